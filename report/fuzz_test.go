package report

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/synbatch/synbatch/journal"
)

// FuzzReportOfASummarizedJournal: every journal that journal summary
// accepts, journal report reads and renders without a panic or an error.
// The seeds are the shapes that broke it: results stamped out of order or
// with durations that do not fit their time (a clock stepped back, a
// journal edited by hand, merged shards), and records before any run.
func FuzzReportOfASummarizedJournal(f *testing.F) {
	const run = `{"type":"run","tool":"synbatch","manifest":"m.csv","server":"https://hs","started":"2026-03-01T09:00:00Z"}` + "\n"
	row := func(ts, ms string) string {
		return `{"type":"row","row":2,"key":"k` + ts + ms + `","outcome":"done","ts":` + ts + `,"duration_ms":` + ms + "}\n"
	}
	for _, seed := range []string{
		run + row("1772355600000", "5") + row("1772355601000", "5"),
		run + row("1772355600000", "-5000"),                             // a duration below zero
		run + row("1772355600000", "-5000") + row("1772355600100", "1"), // ... beside another row
		run + row("1772355600000", "9223372036854775807"),               // a duration past any clock
		run + row("-1772355600000", "5") + row("1772355600000", "5"),    // a time before 1970
		run + row("9223372036854775807", "-9223372036854775807"),
		run + row("1", "0") + row("9223372036854775807", "0"),
		row("1772355600000", "5") + run, // a result before any run header
		`{"type":"end","outcomes":{"done":1}}` + "\n" + run + row("1772355600000", "5"),
		run,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "j.jsonl")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := journal.Summarize(path); err != nil {
			return // summary refuses it: report may too
		}
		r, err := Read(path)
		if err != nil {
			t.Fatalf("summary accepts the journal, report does not: %v", err)
		}
		if err := r.WriteHTML(io.Discard, "test"); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}
