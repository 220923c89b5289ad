package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

func strp(s string) *string { return &s }

// TestMASProviderNamedByIdOrOneNameAmbiguousRefusedWithCandidates: on a
// MAS server a manifest names a provider by its id or by a human or brand
// name (case aside) that picks exactly one; a name two providers share is
// ErrAmbiguousProvider naming both (never ErrUnknownProvider, which
// --allow-unknown-provider would let through); a name none has is
// ErrUnknownProvider naming every MAS provider by id and human name.
func TestMASProviderNamedByIdOrOneNameAmbiguousRefusedWithCandidates(t *testing.T) {
	ps := []mas.Provider{
		{ID: "01AAAAAAAAAAAAAAAAAAAAAAAA", HumanName: strp("Corporate SSO"), BrandName: strp("keycloak")},
		{ID: "01BBBBBBBBBBBBBBBBBBBBBBBB", HumanName: strp("Partner SSO"), BrandName: strp("keycloak")},
		{ID: "01CCCCCCCCCCCCCCCCCCCCCCCC", HumanName: strp("Google"), BrandName: strp("google")},
	}
	list := func(context.Context) ([]mas.Provider, error) { return ps, nil }
	r := newRig(t)
	for _, tc := range []struct {
		name, cell string
		want       error
		mention    []string
	}{
		{"by id", "01BBBBBBBBBBBBBBBBBBBBBBBB:s", nil, nil},
		{"by human name, case aside", "corporate sso:s", nil, nil},
		{"by a brand name one has", "GOOGLE:s", nil, nil},
		{"by a brand name two share", "keycloak:s", ErrAmbiguousProvider, []string{"01AAAAAAAAAAAAAAAAAAAAAAAA (Corporate SSO", "01BBBBBBBBBBBBBBBBBBBBBBBB (Partner SSO", "by its id"}},
		{"by a name none has", "keycloack:s", ErrUnknownProvider, []string{"m.csv:2:external_ids: keycloack", "01AAAAAAAAAAAAAAAAAAAAAAAA (Corporate SSO", "01CCCCCCCCCCCCCCCCCCCCCCCC (Google"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := r.manifest("m.csv", "user_id,action,external_ids\nalice,set-external-ids,"+tc.cell+"\n")
			src.Name = "m.csv"
			ch, err := Validate(src)
			if err != nil || ch.Total > 0 {
				t.Fatal(err, ch.Problems)
			}
			err = CheckMASProviders(context.Background(), list, src, ch, synapse.Retry{Attempts: 1})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.want == ErrAmbiguousProvider && errors.Is(err, ErrUnknownProvider) {
				t.Fatalf("an ambiguous name is also unknown: %v", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("%v does not name %q", err, m)
				}
			}
		})
	}
}
