package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The readers of this package, by name: each gives the rows it counts.
var readers = []struct {
	name string
	rows func(path string) (int, error)
}{
	{"Summarize", func(p string) (int, error) {
		s, err := Summarize(p)
		if err != nil {
			return 0, err
		}
		return s.Rows, nil
	}},
	{"LastRunOutcomes", func(p string) (int, error) {
		held, err := LastRunOutcomes(p)
		n := 0
		for _, c := range held {
			n += c
		}
		return n, err
	}},
	{"Merge", func(p string) (int, error) {
		out := p + ".merged"
		if err := Merge(out, []string{p}); err != nil {
			return 0, err
		}
		st, err := Load(out)
		if err != nil {
			return 0, fmt.Errorf("the merged journal: %w", err)
		}
		return st.Records, nil
	}},
	// Load last: it cuts a torn tail off the file.
	{"Load", func(p string) (int, error) {
		st, err := Load(p)
		if err != nil {
			return 0, err
		}
		return st.Records, nil
	}},
}

const (
	runLine = `{"type":"run","tool":"synbatch","manifest":"m.csv"}` + "\n"
	rowA    = `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
	rowB    = `{"type":"row","row":3,"key":"b","outcome":"failed","error":"boom"}` + "\n"
)

// TestEveryReaderCountsTheRowsLoadCountsOfATornTail: a last line without
// its newline is torn for every reader, even when it parses, so summary,
// the failed run's own count and a merge hold the rows a resume finds
// (and a merged journal loads).
func TestEveryReaderCountsTheRowsLoadCountsOfATornTail(t *testing.T) {
	t.Parallel()
	for _, tail := range []string{
		`{"type":"row","row":4,"key":"c","outc`,
		`{"type":"row","row":4,"key":"c","outcome":"done"}`,
	} {
		t.Run(tail, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(p, []byte(runLine+rowA+rowB+tail), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, r := range readers {
				n, err := r.rows(p)
				if err != nil || n != 2 {
					t.Errorf("%s: %d rows, %v; want the 2 whole ones", r.name, n, err)
				}
			}
		})
	}
}

// TestEveryReaderRefusesDamageNamingItsLine: a damaged line before the
// end, or a file synbatch did not write, is an error in every reader, the
// damage naming its file and line.
func TestEveryReaderRefusesDamageNamingItsLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, text string
		err        error
		has        string
	}{
		{"not JSON", runLine + rowA + "garbage\n" + rowB, ErrDamaged, "(line 3)"},
		{"a flipped value", runLine + rowA + strings.Replace(rowB, "failed", "fAiled", 1) + rowA, ErrDamaged, "(line 3)"},
		{"a flipped value last", runLine + rowA + strings.Replace(rowB, "failed", "fAiled", 1), ErrDamaged, "(line 3)"},
		{"not a journal", "remember the milk\n" + runLine + rowA, ErrForeign, "does not begin with a synbatch run record"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, r := range readers {
				_, err := r.rows(p)
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.has) {
					t.Errorf("%s: %v; want %v naming %s and %q", r.name, err, c.err, p, c.has)
				}
			}
		})
	}
}
