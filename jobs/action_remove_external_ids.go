package jobs

import (
	"context"
	"slices"

	"github.com/synbatch/synbatch/synapse"
)

// RemoveExternalIDs removes the row's SSO mappings and keeps the rest.
const RemoveExternalIDs Action = "remove-external-ids"

var removeExternalIDsAction = &Spec{Name: RemoveExternalIDs, Kind: UserRow, Columns: []string{"external_ids"},
	Destructive: true, parse: parseIDList, plan: withUser(false, planRemoveExternalIDs)}

func planRemoveExternalIDs(_ context.Context, j *Job, env Env, _ *State, p *Plan, u *synapse.User) error {
	l := j.payload.(*idList)
	keep := slices.DeleteFunc(slices.Clone(u.ExternalIDs), func(x synapse.ExternalID) bool { return slices.Contains(l.ids, x) })
	if len(keep) == len(u.ExternalIDs) {
		return nil
	}
	if keep == nil {
		keep = []synapse.ExternalID{}
	}
	p.MappingsRemoved = len(u.ExternalIDs) - len(keep)
	putStep(env, p, "external_ids", keep, idsText(u.ExternalIDs), idsText(keep))
	return nil
}
