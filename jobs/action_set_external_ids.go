package jobs

import (
	"context"

	"github.com/synbatch/synbatch/synapse"
)

// SetExternalIDs adds the row's SSO mappings to the user's (--replace-lists
// replaces them).
const SetExternalIDs Action = "set-external-ids"

var setExternalIDsAction = &Spec{Name: SetExternalIDs, Kind: UserRow, Columns: []string{"external_ids"},
	parse: parseIDList, plan: withUser(false, planSetExternalIDs)}

// idList is the payload of the external id actions.
type idList struct {
	ids     []synapse.ExternalID
	replace bool
}

func parseIDList(p *parser, j *Job) any {
	ids, _ := p.externalIDs()
	if len(ids) == 0 {
		p.bad("external_ids", "%s needs external ids", j.Action)
	}
	return &idList{ids: ids, replace: p.opt.ReplaceLists}
}

func planSetExternalIDs(ctx context.Context, j *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
	l := j.payload.(*idList)
	ids := mergeIDs(u.ExternalIDs, l.ids, l.replace)
	if sameIDs(ids, u.ExternalIDs) {
		return nil
	}
	if err := guardExternalIDs(ctx, env.Client, p.UserID, ids, u.ExternalIDs); err != nil {
		return err
	}
	putStep(env, p, "external_ids", ids, idsText(u.ExternalIDs), idsText(ids))
	secondSubjects(p, ids, u.ExternalIDs)
	return nil
}

func (l *idList) claims(f func(column, what string)) { claimIDs(l.ids, f) }
