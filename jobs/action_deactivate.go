package jobs

import (
	"context"
	"strings"

	"github.com/synbatch/synbatch/formats"

	"github.com/synbatch/synbatch/synapse"
)

// Deactivate deactivates the account, and with erase erases it. With
// redact its events are redacted first, with media=delete its uploads are
// deleted, and with clear=external_ids its SSO mappings are removed so no
// SSO login maps to the closed account.
const Deactivate Action = "deactivate"

var deactivateAction = &Spec{Name: Deactivate, Kind: UserRow, Columns: []string{"erase", "redact", "clear", "media"},
	closes: true, Destructive: true, parse: parseDeactivate, plan: withUser(true, planDeactivate)}

// deactivation is a deactivate row's payload.
type deactivation struct {
	erase       bool
	redact      bool
	clearIDs    bool
	deleteMedia bool
}

func parseDeactivate(p *parser, _ *Job) any {
	d := &deactivation{}
	if e := p.boolean("erase"); e != nil {
		d.erase = *e
	}
	if r := p.boolean("redact"); r != nil {
		d.redact = *r
	}
	if m, ok := p.scalar("media"); ok && m != "" {
		switch strings.ToLower(m) {
		case "keep":
		case "delete":
			d.deleteMedia = true
		default:
			p.bad("media", "media is keep (the default) or delete, not %s", formats.Quote(m))
		}
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
	// The uploads go while the account still exists as it was: Synapse
	// lists a deactivated user's media too, but a row killed between the
	// steps then resumes with everything still to do in order.
	if d.deleteMedia {
		if err := planDeleteAllMedia(ctx, env, p); err != nil {
			return err
		}
	}
	if d.clearIDs && len(u.ExternalIDs) > 0 {
		p.MappingsRemoved = len(u.ExternalIDs)
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

// planDeactivateRedact plans the redaction a deactivate row asks for, in
// every room the user has events in (left rooms included, so it works on
// an account deactivated already): the task an earlier attempt started is
// polled, never started twice, and events redacted already are not sent
// again.
func planDeactivateRedact(ctx context.Context, env Env, st *State, p *Plan, _ *synapse.User) error {
	return planRedaction(ctx, env, st, p, &redaction{})
}
