package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/journal"
)

// writeSampleJournal writes a journal of one run of 40 deactivations over
// 20 seconds, two at a time, with a failed row and an uncertain one.
func writeSampleJournal(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "leavers.csv.journal.jsonl")
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	w, err := journal.Create(path, journal.Header{Tool: "synbatch", Version: "v1.2.0", Manifest: "leavers.csv",
		ManifestSHA256: strings.Repeat("ab", 32), Server: "https://matrix.example.org", Actor: "@dpo-admin:example.org", Started: start,
		Args: []string{"--action=deactivate", "--yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The writer stamps records with the time now; these are written as
	// they would have been over 20 seconds.
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	for i := range 40 {
		rec := journal.Record{Type: "row", Row: i + 2, Key: "row-" + two(i), Action: "deactivate",
			UserID: "@user" + two(i) + ":example.org", Outcome: journal.Done, Attempts: 1, DurationMS: 1000,
			Time: start.Add(time.Duration(i+2) * 500 * time.Millisecond).UnixMilli()}
		switch i {
		case 7:
			rec.Outcome, rec.Status, rec.Errcode, rec.Error, rec.Attempts = journal.Failed, 403, "M_FORBIDDEN", "You are not a server admin", 3
		case 13:
			rec.Action, rec.Outcome, rec.Error = "reset-password", journal.Uncertain, "the answer was lost and a login could not settle it"
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Encode(journal.End{Type: "end", Outcomes: map[string]int{"done": 38, "failed": 1, "uncertain": 1}, Concurrency: 2, ElapsedS: 21}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(lines.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func two(i int) string {
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

func TestRead(t *testing.T) {
	r, err := Read(writeSampleJournal(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows != 40 || len(r.Runs) != 1 || r.Runs[0].End == nil || r.Runs[0].Version != "v1.2.0" {
		t.Fatalf("rows %d, runs %+v", r.Rows, r.Runs)
	}
	want := []Count{{"done", 38}, {"failed", 1}, {"uncertain", 1}}
	if len(r.Outcomes) != len(want) {
		t.Fatalf("outcomes %v, want %v", r.Outcomes, want)
	}
	for i := range want {
		if r.Outcomes[i] != want[i] {
			t.Errorf("outcomes %v, want %v", r.Outcomes, want)
		}
	}
	if len(r.Actions) != 2 || r.Actions[0].Action != "deactivate" || r.Actions[0].Total != 39 || r.Actions[1].By["uncertain"] != 1 {
		t.Errorf("actions %+v", r.Actions)
	}
	if len(r.Problems) != 2 || r.Problems[0].Row != 9 || r.Problems[1].Row != 15 {
		t.Errorf("problems %+v", r.Problems)
	}
	// Rows finish every 500 ms and each takes a second: 2 rows a second,
	// 2 in flight, once the first row's start is behind.
	mid := len(r.Rate.Values) / 2
	if got := r.Rate.Values[mid]; got < 1.5 || got > 2.5 {
		t.Errorf("rate mid-run %.2f rows/s, want about 2 (%v)", got, r.Rate.Values)
	}
	if got := r.InFlight.Values[mid]; got < 1.8 || got > 2.2 {
		t.Errorf("in flight mid-run %.2f, want about 2 (%v)", got, r.InFlight.Values)
	}
	if r.First.IsZero() || !r.Last.After(r.First) {
		t.Errorf("first %v, last %v", r.First, r.Last)
	}
}

// TestHTMLEscapes: an error text from the server is text on the page.
func TestHTMLEscapes(t *testing.T) {
	r := &Report{Rows: 1, Problems: []Problem{{Record: journal.Record{Row: 2, UserID: "@x:hs", Outcome: journal.Failed, Error: `<script>alert(1)</script>`}}}}
	var b bytes.Buffer
	if err := r.WriteHTML(&b, "v0"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") || !strings.Contains(b.String(), "&lt;script&gt;") {
		t.Errorf("error text not escaped:\n%s", b.String())
	}
}

// TestReportNamesTheActorAndTheAffectedUsers: the page says who ran the
// run (the header's actor), lists every user a destructive row changed by
// id, and gives each failed row its manifest.
func TestReportNamesTheActorAndTheAffectedUsers(t *testing.T) {
	r, err := Read(writeSampleJournal(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 1 || r.Runs[0].Actor != "@dpo-admin:example.org" {
		t.Fatalf("runs %+v", r.Runs)
	}
	// 40 rows: one deactivation failed, one row was an uncertain password reset.
	if got := len(r.Runs[0].Affected); got != 38 {
		t.Fatalf("%d affected users, want 38: %+v", got, r.Runs[0].Affected)
	}
	if len(r.Problems) != 2 || r.Problems[0].Manifest != "leavers.csv" {
		t.Fatalf("problems %+v", r.Problems)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b, "v0"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`<td class="actor">@dpo-admin:example.org</td>`, `<td class="ran">deactivate 39, reset-password 1</td>`,
		`<td>deactivate</td><td>@user00:example.org</td><td class="n">2</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "@user07:example.org</td><td class=\"n\">9</td>") {
		t.Error("the failed row's user is listed as affected")
	}
}

// TestReportOfATornTailCountsTheRowsLoadCounts: a last line without its
// newline is torn for the report as for Load and summary, even when it
// parses: its row is in no count, action or list of affected users.
func TestReportOfATornTailCountsTheRowsLoadCounts(t *testing.T) {
	t.Parallel()
	path := writeSampleJournal(t, t.TempDir())
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`{"type":"row","row":99,"key":"row-99","user_id":"@user99:example.org","action":"deactivate","outcome":"done","ts":1772355630000}`)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := journal.Load(path)
	if err != nil || st.Repaired == "" {
		t.Fatalf("Load did not find the torn tail: %v", err)
	}
	if r.Rows != st.Records || r.Rows != 40 {
		t.Errorf("the report counts %d rows, Load %d; want the 40 whole ones", r.Rows, st.Records)
	}
	if len(r.Actions) == 0 || r.Actions[0].Action != "deactivate" || r.Actions[0].Total != 39 {
		t.Errorf("actions %+v, want the torn row in none", r.Actions)
	}
	for _, a := range r.Runs[0].Affected {
		if a.UserID == "@user99:example.org" {
			t.Errorf("the torn row's user is listed as affected")
		}
	}
}

// TestReportOfADamagedLineNamesIt: damage before the end is an error
// naming the journal and the line, as in every reader.
func TestReportOfADamagedLineNamesIt(t *testing.T) {
	t.Parallel()
	path := writeSampleJournal(t, t.TempDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[4] = "garbage\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Read(path)
	if !errors.Is(err, journal.ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "(line 5)") {
		t.Fatalf("err = %v, want damage naming %s and line 5", err, path)
	}
}

// TestPerActionCountsTheAccountsCreated: of an action's done rows, those
// whose write answered 201 (a new account) are counted apart from those
// that changed one, in Read and in the HTML's per-action table.
func TestPerActionCountsTheAccountsCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hr.csv.journal.jsonl")
	w, err := journal.Create(path, journal.Header{Tool: "synbatch", Manifest: "hr.csv", Server: "https://hs.example", Started: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []int{201, 201, 200, 0} {
		rec := journal.Record{Type: "row", Row: i + 2, Key: "k" + two(i), Action: "upsert", UserID: "@u" + two(i) + ":hs", Outcome: journal.Done, Status: st}
		if st == 0 {
			rec.Outcome = journal.Unchanged
		}
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Actions) != 1 || r.Actions[0].By["done"] != 3 || r.Actions[0].Created != 2 {
		t.Fatalf("actions %+v, want 3 done of which 2 created", r.Actions)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b, "v0"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<th>of them created</th>`) || !strings.Contains(b.String(), `<td>upsert</td><td class="n">4</td><td class="n">3</td><td class="n">2</td>`) {
		t.Fatalf("the per-action table does not count the created accounts:\n%s", b.String())
	}
}
