package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// UnshadowBan lifts a shadow-ban.
const UnshadowBan Action = "unshadow-ban"

var unshadowBanAction = &Spec{Name: UnshadowBan, Kind: UserRow, plan: withUser(false, planShadowBan(false))}

// planShadowBan plans shadow-ban (want) and unshadow-ban.
func planShadowBan(want bool) func(context.Context, *Job, Env, *State, *Plan, *synapse.User) error {
	return func(_ context.Context, _ *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
		if bool(u.ShadowBan) == want {
			return nil
		}
		c, id := env.Client, p.UserID
		p.Changes = append(p.Changes, FieldChange{Field: "shadow_banned", Old: fmt.Sprint(bool(u.ShadowBan)), New: fmt.Sprint(want)})
		p.steps = append(p.steps, step{fields: []string{"shadow_banned"}, do: func(ctx context.Context) (int, error) {
			return 200, c.SetShadowBan(ctx, id, want)
		}})
		return nil
	}
}
