package export

import (
	"context"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// masRegistrationTokens lists MAS's user registration tokens in the shape
// of Synapse's, so the export's columns stay the same: MAS's usage limit as
// uses_allowed, its expiry as expiry_time, its uses as completed (MAS has
// no pending registrations). A revoked token is left out: MAS cannot delete
// it, and applying it back could only fail.
func masRegistrationTokens(ctx context.Context, m *mas.Client) ([]synapse.RegistrationToken, error) {
	ts, err := m.RegTokens(ctx)
	if err != nil {
		return nil, err
	}
	var out []synapse.RegistrationToken
	for _, t := range ts {
		if t.RevokedAt != nil {
			continue
		}
		rt := synapse.RegistrationToken{Token: t.Token, UsesAllowed: t.UsageLimit, Completed: t.TimesUsed}
		if t.ExpiresAt != nil {
			ms := t.ExpiresAt.UnixMilli()
			rt.ExpiryTime = &ms
		}
		out = append(out, rt)
	}
	return out, nil
}
