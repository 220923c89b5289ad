package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// Lock locks the account: it can no longer log in or use its sessions.
const Lock Action = "lock"

var lockAction = &Spec{Name: Lock, Kind: UserRow, closes: true, plan: withUser(false, planLock(true))}

// planLock plans lock (want) and unlock.
func planLock(want bool) func(context.Context, *Job, Env, *State, *Plan, *synapse.User) error {
	return func(_ context.Context, _ *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
		if bool(u.Locked) != want {
			putStep(env, p, "locked", want, fmt.Sprint(bool(u.Locked)), fmt.Sprint(want))
		}
		return nil
	}
}
