package jobs

import (
	"context"

	"github.com/synbatch/synbatch/synapse"
)

// Deactivate deactivates the account, and with erase erases it.
const Deactivate Action = "deactivate"

var deactivateAction = &Spec{Name: Deactivate, Kind: UserRow, Columns: []string{"erase"},
	Destructive: true, parse: parseDeactivate, plan: withUser(true, planDeactivate)}

// deactivation is a deactivate row's payload.
type deactivation struct {
	erase bool
}

func parseDeactivate(p *parser, _ *Job) any {
	d := &deactivation{}
	if e := p.boolean("erase"); e != nil {
		d.erase = *e
	}
	return d
}

func planDeactivate(_ context.Context, j *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
	erase := j.payload.(*deactivation).erase
	if bool(u.Deactivated) && (!erase || bool(u.Erased)) {
		return nil
	}
	what := "deactivated"
	if erase {
		what = "deactivated and erased"
	}
	c, id := env.Client, p.UserID
	p.Erases = erase
	p.Changes = append(p.Changes, FieldChange{Field: "account", Old: accountState(u), New: what})
	p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
		return 200, c.Deactivate(ctx, id, erase)
	}})
	return nil
}
