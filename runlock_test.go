package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
)

// TestUserLockExcludesWhetherValidatedOrRevalidated: two applies of
// different files naming one user exclude each other whether each took
// its users from a validation made now or, resuming, from its journal's
// record of one (the manifest read again); a file naming another user
// goes on beside them.
func TestUserLockExcludesWhetherValidatedOrRevalidated(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	const server = "https://hs.example"
	checked := func(t *testing.T, name, csv string, fromJournal bool) (pipeline.Source, *pipeline.Checked) {
		t.Helper()
		src, ch := validSource(t, name, csv)
		if !fromJournal {
			return src, ch
		}
		st := &journal.State{Runs: []journal.Header{{Type: "run", Validated: ch.Record(pipeline.Fingerprint(src, name))}}}
		back, err := pipeline.Revalidated(st, pipeline.Fingerprint(src, name))
		if err != nil || back == nil {
			t.Fatalf("%s: the journal's record was not reused: %v", name, err)
		}
		return src, back
	}
	for _, c := range []struct {
		name                    string
		firstJ, secondJ, thirdJ bool
	}{
		{"validated, then revalidated", false, true, false},
		{"revalidated, then validated", true, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var stderr bytes.Buffer
			srcA, chA := checked(t, "users.csv", "user_id,password\nbob,Supplied-Pass-123\n", c.firstJ)
			srcB, chB := checked(t, "edited.csv", "user_id,displayname\nbob,Bobby\n", c.secondJ)
			srcC, chC := checked(t, "others.csv", "user_id,displayname\ndave,Dave\n", c.thirdJ)
			releaseA, err := lockManifest(ctx, server, "aa", srcA, chA, nil, filepath.Join(dir, "one.jsonl"), &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lockManifest(ctx, server, "bb", srcB, chB, nil, filepath.Join(dir, "two.jsonl"), &stderr); !errors.Is(err, journal.ErrLocked) {
				releaseA()
				t.Fatalf("a second file naming bob: %v, want ErrLocked", err)
			}
			releaseC, err := lockManifest(ctx, server, "cc", srcC, chC, nil, filepath.Join(dir, "three.jsonl"), &stderr)
			if err != nil {
				releaseA()
				t.Fatalf("a file naming only dave: %v", err)
			}
			releaseC()
			releaseA()
			releaseB, err := lockManifest(ctx, server, "bb", srcB, chB, nil, filepath.Join(dir, "two.jsonl"), &stderr)
			if err != nil {
				t.Fatalf("once the first run released: %v", err)
			}
			releaseB()
			if stderr.Len() > 0 {
				t.Fatalf("a lock was not taken: %s", stderr.String())
			}
		})
	}
}

// TestUserLockHoldsTheAccountsSyncCloses: the accounts --sync closes are
// no row of the manifest, and the run lock holds them too: a run of
// another file that writes one of them is refused while the sync run
// holds its lock, and goes on once it is released.
func TestUserLockHoldsTheAccountsSyncCloses(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	const server = "https://hs.example"
	ctx := context.Background()
	roster, rosterCh := validSource(t, "roster.csv", "user_id,displayname\nbob,Bob\n")
	closing, err := jobs.SyncJob(jobs.Deactivate, "@carol:hs.test", "--sync deactivate: not in the roster")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	release, err := lockManifest(ctx, server, "roster", roster, rosterCh, []*jobs.Job{closing}, filepath.Join(dir, "roster.jsonl"), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	other, otherCh := validSource(t, "carol.csv", "user_id,displayname\ncarol,Carol\n")
	if _, err := lockManifest(ctx, server, "carol", other, otherCh, nil, filepath.Join(dir, "carol.jsonl"), &stderr); !errors.Is(err, journal.ErrLocked) {
		release()
		t.Fatalf("a file writing the user --sync closes: %v, want ErrLocked", err)
	}
	release()
	again, err := lockManifest(ctx, server, "carol", other, otherCh, nil, filepath.Join(dir, "carol.jsonl"), &stderr)
	if err != nil {
		t.Fatalf("once the sync run released: %v", err)
	}
	again()
	if stderr.Len() > 0 {
		t.Fatalf("a lock was not taken: %s", stderr.String())
	}
}

// validSource writes csv to a file of the given name and validates it.
func validSource(t *testing.T, name, csv string) (pipeline.Source, *pipeline.Checked) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	src := pipeline.Source{Path: path, Parse: jobs.ParseOptions{File: path, ServerName: "hs.test", DefaultAction: jobs.Upsert}}
	ch, err := pipeline.Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatalf("validate %s: %v %v", name, err, ch.Problems)
	}
	return src, ch
}
