package pipeline

import (
	"errors"
	"io"
	"testing"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// TestRowKeysStayCanonical: a journal's keys hash the cells by canonical
// column name, so a manifest written with canonical headers keeps the keys
// it had before headers were matched loosely, and the same sheet headed
// "User ID", "Display Name" has the same keys.
func TestRowKeysStayCanonical(t *testing.T) {
	r := newRig(t)
	keys := func(src Source, rd formats.Reader, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var out []string
		for {
			row, err := rd.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatalf("%s: %v", src.Path, err)
			}
			out = append(out, jobs.RowKey(row, src.Parse))
		}
	}
	a := r.manifest("a.csv", "user_id,displayname,emails\nalice,Alice,a@example.org\n")
	b := r.manifest("b.csv", "User ID,Display Name,Emails\nalice,Alice,a@example.org\n")
	raw, err := formats.Open(a.Path, formats.Options{})
	before := keys(a, raw, err)
	ra, err := a.Open()
	canonical := keys(a, ra, err)
	rb, err := b.Open()
	written := keys(b, rb, err)
	if len(before) != 1 || len(canonical) != 1 || len(written) != 1 || before[0] != canonical[0] || canonical[0] != written[0] {
		t.Fatalf("keys differ: before %v, canonical %v, as written %v", before, canonical, written)
	}
}

// TestResumeAcceptsTheSameServerWrittenDifferently: a journal written with
// --server https://Matrix.example.org/ resumes with
// https://matrix.example.org (a trailing slash and the host's case name
// the same server); another host is still refused.
func TestResumeAcceptsTheSameServerWrittenDifferently(t *testing.T) {
	t.Parallel()
	st := &journal.State{Runs: []journal.Header{{Server: "https://Matrix.example.org/"}}}
	for _, c := range []struct {
		server string
		ok     bool
	}{
		{"https://matrix.example.org", true},
		{"https://matrix.example.org/", true},
		{"HTTPS://MATRIX.EXAMPLE.ORG//", true},
		{"https://matrix.example.org:8448", false},
		{"https://other.example.org", false},
		{"https://matrix.example.org/synapse", false},
	} {
		err := checkJournal(st, Config{Journal: "j", Header: journal.Header{Server: c.server}})
		if got := err == nil; got != c.ok || (err != nil && !errors.Is(err, ErrJournalMismatch)) {
			t.Errorf("resume with %s: %v, want ok %t", c.server, err, c.ok)
		}
	}
}
