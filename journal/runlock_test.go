package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockRunExcludesOverlappingRuns: two runs of one manifest against one
// server exclude each other unless they are different shards of it.
func TestLockRunExcludesOverlappingRuns(t *testing.T) {
	type run struct {
		server, sum string
		k, n        int
	}
	whole := run{"https://hs.example", "aa", 0, 1}
	for _, c := range []struct {
		name        string
		first, then run
		refused     bool
	}{
		{"the same manifest twice", whole, whole, true},
		{"the same server spelt otherwise", whole, run{"HTTPS://HS.example/", "aa", 0, 1}, true},
		{"another manifest", whole, run{"https://hs.example", "bb", 0, 1}, false},
		{"another server", whole, run{"https://other.example", "aa", 0, 1}, false},
		{"two shards", run{"https://hs.example", "aa", 0, 2}, run{"https://hs.example", "aa", 1, 2}, false},
		{"one shard twice", run{"https://hs.example", "aa", 1, 2}, run{"https://hs.example", "aa", 1, 2}, true},
		{"a shard, then the whole", run{"https://hs.example", "aa", 1, 2}, whole, true},
		{"the whole, then a shard", whole, run{"https://hs.example", "aa", 1, 2}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			a, err := LockRun(dir, c.first.server, c.first.sum, c.first.k, c.first.n, "first.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			b, err := LockRun(dir, c.then.server, c.then.sum, c.then.k, c.then.n, "second.jsonl")
			if !c.refused {
				if err != nil {
					t.Fatal(err)
				}
				b.Release()
				a.Release()
				return
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("second run: %v, want ErrLocked", err)
			}
			// The first run is named, when it is one run.
			if c.first.n == 1 && (!strings.Contains(err.Error(), fmt.Sprintf("synbatch pid %d", os.Getpid())) || !strings.Contains(err.Error(), "first.jsonl")) {
				t.Fatalf("err = %v, want the first run's pid and journal", err)
			}
			a.Release()
			b, err = LockRun(dir, c.then.server, c.then.sum, c.then.k, c.then.n, "second.jsonl")
			if err != nil {
				t.Fatalf("after the first run released: %v", err)
			}
			b.Release()
		})
	}
}

// TestLockRunDoesNotFollowASymlink: a symlink planted where a run lock
// goes is refused, its target untouched.
func TestLockRunDoesNotFollowASymlink(t *testing.T) {
	dir := t.TempDir()
	l, err := LockRun(dir, "https://hs", "aa", 0, 1, "j")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files %v", locks)
	}
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("precious\n"), 0o600)
	os.Remove(locks[0])
	os.Symlink(target, locks[0])
	if _, err := LockRun(dir, "https://hs", "aa", 0, 1, "j"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("err = %v, want the symbolic link refused", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Fatalf("target changed: %q", b)
	}
}
