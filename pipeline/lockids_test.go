package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// TestLockIDsSameWhetherValidatedOrRevalidated: the users apply's lock
// holds are the same whether validation ran now (its ids, the manifest
// not read again) or a resume took the journal's record of it (the
// manifest read again), with a shard and --rows leaving rows out.
func TestLockIDsSameWhetherValidatedOrRevalidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.csv")
	csv := "user_id,displayname\n"
	for _, u := range []string{"ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lou", "bob"} {
		csv += u + "," + u + "\n"
	}
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	const sum = "0123abcd"
	src := Source{Path: path, Parse: jobs.ParseOptions{File: path, ServerName: "hs.test", DefaultAction: jobs.Upsert},
		Shard: 1, Shards: 2, FirstRow: 3, LastRow: 14}
	ch, err := Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatalf("validate: %v %v", err, ch.Problems)
	}
	reread, err := Identities(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(reread) == 0 || len(reread) >= 12 {
		t.Fatalf("a read of the manifest gives %d ids, want some but not every row's (shard 1 of 2, rows 3-14)", len(reread))
	}
	st := &journal.State{Runs: []journal.Header{{Type: "run", Validated: ch.Record(Fingerprint(src, sum))}}}
	back, err := Revalidated(st, Fingerprint(src, sum))
	if err != nil || back == nil {
		t.Fatalf("the journal's record was not reused: %v", err)
	}
	fromJournal, err := back.TakeIdentities(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	// The ids validation kept need no manifest: removed, it is not read.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	validated, err := ch.TakeIdentities(context.Background(), src)
	if err != nil {
		t.Fatalf("validated ids read the manifest again: %v", err)
	}
	if !slices.Equal(validated, reread) || !slices.Equal(fromJournal, reread) {
		t.Fatalf("lock ids differ: validated %x, from the journal %x, read %x", validated, fromJournal, reread)
	}
	// The journal's record keeps no ids: that path reads the manifest.
	if _, err := back.TakeIdentities(context.Background(), src); err == nil {
		t.Fatal("a revalidated run took its ids without reading the manifest")
	}
	// Taken, validation's ids are let go: a second take reads the manifest.
	if ch.IDs != nil {
		t.Fatalf("validation still holds %d ids once the lock took them", len(ch.IDs))
	}
	if _, err := ch.TakeIdentities(context.Background(), src); err == nil {
		t.Fatal("a second take of validation's ids did not read the manifest")
	}
}
