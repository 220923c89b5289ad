package export

import (
	"context"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// masRegistrationTokens lists every one of MAS's user registration tokens,
// revoked ones too, in the shape of Synapse's, so the export's columns stay
// the same: MAS's usage limit as uses_allowed, its expiry as expiry_time,
// its uses as completed (MAS has no pending registrations), and whether it
// is revoked. A revoked token is written with revoked=true rather than left
// out: MAS cannot delete it, so the export is the manifest of what MAS
// holds, and applying it back keeps the token revoked.
func masRegistrationTokens(ctx context.Context, m *mas.Client) ([]exportedToken, error) {
	ts, err := m.RegTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]exportedToken, 0, len(ts))
	for _, t := range ts {
		rt := synapse.RegistrationToken{Token: t.Token, UsesAllowed: t.UsageLimit, Completed: t.TimesUsed}
		if t.ExpiresAt != nil {
			ms := t.ExpiresAt.UnixMilli()
			rt.ExpiryTime = &ms
		}
		out = append(out, exportedToken{RegistrationToken: rt, revoked: t.RevokedAt != nil})
	}
	return out, nil
}
