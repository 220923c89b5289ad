package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// SetRatelimit overrides the user's message rate limit; an empty cell
// keeps the current value.
const SetRatelimit Action = "set-ratelimit"

var setRatelimitAction = &Spec{Name: SetRatelimit, Kind: UserRow, Columns: []string{"messages_per_second", "burst_count"},
	parse: parseRatelimit, plan: withUser(false, planSetRatelimit)}

// ratelimit is a set-ratelimit row's payload: nil keeps the user's
// current value.
type ratelimit struct {
	messagesPerSecond, burstCount *int64
}

func parseRatelimit(p *parser, _ *Job) any {
	r := &ratelimit{messagesPerSecond: p.count("messages_per_second"), burstCount: p.count("burst_count")}
	if r.messagesPerSecond == nil && r.burstCount == nil {
		p.bad("messages_per_second", "set-ratelimit needs messages_per_second or burst_count (0 and 0 lift the user's limit)")
	}
	return r
}

func planSetRatelimit(ctx context.Context, j *Job, env Env, _ *State, p *Plan, _ *synapse.User) error {
	r, c, id := j.payload.(*ratelimit), env.Client, p.UserID
	cur, err := c.GetRatelimit(ctx, id)
	if err != nil {
		return fmt.Errorf("read rate limit of %s: %w", id, err)
	}
	// An empty cell keeps the current value (0 when none is set).
	mps, burst := valueOr(r.messagesPerSecond, cur.MessagesPerSecond), valueOr(r.burstCount, cur.BurstCount)
	if cur.MessagesPerSecond != nil && *cur.MessagesPerSecond == mps && cur.BurstCount != nil && *cur.BurstCount == burst {
		return nil
	}
	p.Changes = append(p.Changes, FieldChange{Field: "ratelimit", Old: ratelimitText(cur), New: ratelimitText(synapse.Ratelimit{MessagesPerSecond: &mps, BurstCount: &burst})})
	p.steps = append(p.steps, step{fields: []string{"ratelimit"}, do: func(ctx context.Context) (int, error) {
		return 200, c.SetRatelimit(ctx, id, mps, burst)
	}})
	return nil
}
