package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// DeleteRatelimit removes the user's rate limit override.
const DeleteRatelimit Action = "delete-ratelimit"

var deleteRatelimitAction = &Spec{Name: DeleteRatelimit, Kind: UserRow, plan: withUser(false, planDeleteRatelimit)}

func planDeleteRatelimit(ctx context.Context, _ *Job, env Env, _ *State, p *Plan, _ *synapse.User) error {
	c, id := env.Client, p.UserID
	cur, err := c.GetRatelimit(ctx, id)
	if err != nil {
		return fmt.Errorf("read rate limit of %s: %w", id, err)
	}
	if cur.MessagesPerSecond == nil && cur.BurstCount == nil {
		return nil
	}
	p.Changes = append(p.Changes, FieldChange{Field: "ratelimit", Old: ratelimitText(cur), New: "server default"})
	p.steps = append(p.steps, step{fields: []string{"ratelimit"}, do: func(ctx context.Context) (int, error) {
		return 200, c.DeleteRatelimit(ctx, id)
	}})
	return nil
}
