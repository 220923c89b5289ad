package pipeline

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/journal"
)

// TestProvidersFoundByValidationAndKeptForAResume: validation notes the
// providers rows give users (remove-external-ids rows aside), with their
// first row and count; the record a journal keeps carries them to a
// resume, and a record made before they were kept is not reused (so a
// resumed run still checks them).
func TestProvidersFoundByValidationAndKeptForAResume(t *testing.T) {
	r := newRig(t)
	src := r.manifest("m.csv", "user_id,action,external_ids\nalice,upsert,keycloak:1\nbob,set-external-ids,oidc:2;keycloak:3\ncarol,remove-external-ids,saml:4\n")
	src.Name = "m.csv"
	ch, err := Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatal(err, ch.Problems)
	}
	want := map[string]ProviderRows{"keycloak": {First: 2, Rows: 2}, "oidc": {First: 3, Rows: 1}}
	if !maps.Equal(ch.Providers, want) {
		t.Fatalf("providers %v, want %v", ch.Providers, want)
	}
	unknown := src.UnknownProviders(ch, []string{"oidc", "oidc-keycloak"})
	if !slices.Equal(unknown, []string{"m.csv:2:external_ids: keycloak (and 1 more row)"}) {
		t.Fatalf("unknown %q", unknown)
	}

	rec := ch.Record("fp")
	back, err := Revalidated(&journal.State{Runs: []journal.Header{{Validated: rec}}}, "fp")
	if err != nil || back == nil || !maps.Equal(back.Providers, want) {
		t.Fatalf("revalidated %+v, %v", back, err)
	}
	var old map[string]any
	_ = json.Unmarshal(rec, &old)
	delete(old, "providers")
	oldRec, _ := json.Marshal(old)
	if back, err := Revalidated(&journal.State{Runs: []journal.Header{{Validated: oldRec}}}, "fp"); err != nil || back != nil {
		t.Fatalf("a record without providers was reused: %+v, %v", back, err)
	}
	if !strings.Contains(string(rec), `"providers"`) {
		t.Fatalf("record %s", rec)
	}
}
