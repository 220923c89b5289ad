package jobs

import (
	"context"

	"github.com/synbatch/synbatch/synapse"
)

// Deactivate deactivates the account, and with erase erases it. With
// redact its events are redacted first, and with clear=external_ids its
// SSO mappings are removed so no SSO login maps to the closed account.
const Deactivate Action = "deactivate"

var deactivateAction = &Spec{Name: Deactivate, Kind: UserRow, Columns: []string{"erase", "redact", "clear"},
	closes: true, Destructive: true, parse: parseDeactivate, plan: withUser(true, planDeactivate)}

// deactivation is a deactivate row's payload.
type deactivation struct {
	erase    bool
	redact   bool
	clearIDs bool
}

func parseDeactivate(p *parser, _ *Job) any {
	d := &deactivation{}
	if e := p.boolean("erase"); e != nil {
		d.erase = *e
	}
	if r := p.boolean("redact"); r != nil {
		d.redact = *r
	}
	for c := range p.clears() {
		if c != "external_ids" {
			p.bad("clear", "a deactivate row can clear only external_ids")
			continue
		}
		d.clearIDs = true
	}
	return d
}

func planDeactivate(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *synapse.User) error {
	d := j.payload.(*deactivation)
	// The redaction comes first: a deactivated account has left its rooms,
	// and Synapse's redaction finds its rooms by membership.
	if d.redact {
		if err := planDeactivateRedact(ctx, env, st, p, u); err != nil {
			return err
		}
	}
	if d.clearIDs && len(u.ExternalIDs) > 0 {
		putStep(env, p, "external_ids", []synapse.ExternalID{}, idsText(u.ExternalIDs), "")
	}
	if bool(u.Deactivated) && (!d.erase || bool(u.Erased)) {
		return nil
	}
	what := "deactivated"
	if d.erase {
		what = "deactivated and erased"
	}
	c, id, erase := env.Client, p.UserID, d.erase
	p.Erases = erase
	p.Changes = append(p.Changes, FieldChange{Field: "account", Old: accountState(u), New: what})
	p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
		return 200, c.Deactivate(ctx, id, erase)
	}})
	return nil
}

// planDeactivateRedact plans the redaction a deactivate row asks for: the
// task an earlier attempt started is polled, never started twice.
func planDeactivateRedact(ctx context.Context, env Env, st *State, p *Plan, u *synapse.User) error {
	r := &redaction{}
	if st.TaskID != "" {
		started, err := resumeRedact(ctx, env, st, p, r)
		if started || err != nil {
			return err
		}
	}
	if bool(u.Deactivated) {
		p.note("not redacted: the account is deactivated already and in no room, so Synapse would find none (a redact row with rooms can still redact it)")
		return nil
	}
	return addRedact(ctx, env, st, p, r)
}
