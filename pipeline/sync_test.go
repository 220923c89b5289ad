package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/synapse"
)

func syncIDs(js []*jobs.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.UserID)
	}
	return out
}

// TestSyncChoosesOnlyUnnamedAccountsInScope: --sync closes the active local
// accounts in scope that no row names, and never the admin running it, an
// application service's user, an account out of scope or one already
// deactivated (or, for suspend, already suspended).
func TestSyncChoosesOnlyUnnamedAccountsInScope(t *testing.T) {
	r := newRig(t)
	for _, u := range []fakesynapse.User{
		{Name: "@s.alice:hs.test"}, {Name: "@s.bob:hs.test"}, {Name: "@s.gone:hs.test"}, {Name: "@s.left:hs.test"},
		{Name: "@s.bridge:hs.test", Appservice: "irc"}, {Name: "@s.old:hs.test", Deactivated: true},
		{Name: "@s.held:hs.test", Suspended: true}, {Name: "@other:hs.test"},
	} {
		r.fake.Put(u)
	}
	src := r.manifest("roster.csv", "user_id,displayname,status\ns.alice,Alice,Active\ns.bob,Bob,Active\n")
	src.Parse.Map = map[string]string{"status": "action"}
	src.Parse.ActionValues = map[string]jobs.Action{"Active": jobs.Upsert}
	src.Names = true
	ch, err := Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatal(err, ch.Problems)
	}
	retry := synapse.Retry{Attempts: 1}
	s := Sync{Action: jobs.Deactivate, Scope: `@s\..*:hs\.test`, Max: 10, Keep: []string{"@admin:hs.test"}}
	got, err := SyncJobs(context.Background(), r.client, s, "hs.test", ch, retry)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"@s.gone:hs.test", "@s.held:hs.test", "@s.left:hs.test"}; !slices.Equal(syncIDs(got), want) {
		t.Fatalf("deactivate chose %v, want %v", syncIDs(got), want)
	}
	if !strings.Contains(got[0].Why(), "not in the roster") || !strings.Contains(got[0].Why(), `@s\..*:hs\.test`) {
		t.Errorf("why %q", got[0].Why())
	}
	// A scope is a whole user id: "@s" alone matches nobody; the admin is
	// spared even by a scope that takes everyone.
	s.Scope = "@s"
	if got, _ := SyncJobs(context.Background(), r.client, s, "hs.test", ch, retry); len(got) != 0 {
		t.Errorf("an unanchored scope chose %v", syncIDs(got))
	}
	s.Scope, s.Action = ".*", jobs.Suspend
	got, err = SyncJobs(context.Background(), r.client, s, "hs.test", ch, retry)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"@other:hs.test", "@s.gone:hs.test", "@s.left:hs.test"}; !slices.Equal(syncIDs(got), want) {
		t.Fatalf("suspend chose %v, want %v", syncIDs(got), want)
	}
	if err := CheckSyncMax(Sync{Action: jobs.Suspend, Max: 2}, len(got)); !errors.Is(err, ErrSyncMax) || !strings.Contains(err.Error(), "close 3 accounts") {
		t.Errorf("limit: %v", err)
	}
}

// TestSyncClosesEachAccountOnce: the accounts sync closes are journaled
// with why they were chosen, and a second run with the same journal finds
// them finished and sends nothing (a kill and resume closes each once).
func TestSyncClosesEachAccountOnce(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@s.alice:hs.test"})
	r.fake.Put(fakesynapse.User{Name: "@s.gone:hs.test"})
	src := r.manifest("roster.csv", "user_id\ns.alice\n")
	src.Names = true
	j, err := jobs.SyncJob(jobs.Suspend, "@s.gone:hs.test", "--sync suspend: not in the roster")
	if err != nil {
		t.Fatal(err)
	}
	jp := filepath.Join(r.dir, "j.jsonl")
	st, err := r.apply(src, jp, func(c *Config) { c.Extra = []*jobs.Job{j} })
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 2 || st.Outcomes["done"] != 1 || st.Outcomes["unchanged"] != 1 || !r.fake.User("@s.gone:hs.test").Suspended {
		t.Fatalf("first run %+v", st)
	}
	data, _ := os.ReadFile(jp)
	if !strings.Contains(string(data), `"user_id":"@s.gone:hs.test","action":"suspend","outcome":"done"`) || !strings.Contains(string(data), "not in the roster") {
		t.Fatalf("journal lacks the sync record and its reason:\n%s", data)
	}
	writes := r.fake.Writes.Load()
	st, err = r.apply(src, jp, func(c *Config) { c.Extra = []*jobs.Job{j}; c.AllowChanged = true })
	if err != nil {
		t.Fatal(err)
	}
	if st.Resumed != 2 || r.fake.Writes.Load() != writes {
		t.Fatalf("second run %+v, %d writes", st, r.fake.Writes.Load()-writes)
	}
}
