package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// Suspend suspends the account (a legal hold): it keeps the account and its
// data, and the user may still log in and read, but not send, join or
// change their profile.
const Suspend Action = "suspend"

var suspendAction = &Spec{Name: Suspend, Kind: UserRow, closes: true, plan: withUser(false, planSuspend(true))}

// planSuspend plans suspend (want) and unsuspend: the admin user info says
// whether the account is suspended, so a row already true sends nothing.
func planSuspend(want bool) func(context.Context, *Job, Env, *State, *Plan, *synapse.User) error {
	return func(_ context.Context, _ *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
		if bool(u.Suspended) == want {
			return nil
		}
		c, id := env.Client, p.UserID
		p.add("suspended", FieldChange{Field: "suspended", Old: fmt.Sprint(bool(u.Suspended)), New: fmt.Sprint(want)},
			func(ctx context.Context) (int, error) { return 200, c.SetSuspended(ctx, id, want) })
		return nil
	}
}
