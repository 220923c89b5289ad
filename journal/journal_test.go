package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteThenLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, err := Create(p, Header{Manifest: "m.csv"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := Done
			if i%10 == 0 {
				out = Failed
			}
			if err := w.Append(Record{Row: i + 2, Key: fmt.Sprint("k", i), Outcome: out}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.Append(Record{Type: "begin", Row: 200, Key: "pending"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %o, want 600", fi.Mode().Perm())
	}
	st, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Final.Len() != 90 || st.Records != 100 || len(st.Runs) != 1 || !st.Begun["pending"] {
		t.Fatalf("final %d records %d runs %d begun %v", st.Final.Len(), st.Records, len(st.Runs), st.Begun)
	}
	if st.Final.Has("k10") {
		t.Fatal("a failed row counts as final")
	}
}

func TestLoadRepairsTornTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	good := `{"type":"run","manifest":"m"}` + "\n" + `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
	torn := `{"type":"row","row":3,"key":"b","outc`
	if err := os.WriteFile(p, []byte(good+torn), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Repaired == "" || st.Final.Len() != 1 {
		t.Fatalf("repaired %q final %v", st.Repaired, st.Final)
	}
	b, _ := os.ReadFile(p)
	if string(b) != good {
		t.Fatalf("after repair the journal is %q", b)
	}
	kept, _ := os.ReadFile(p + ".torn")
	if !strings.Contains(string(kept), torn) {
		t.Fatalf("the torn tail was not kept: %q", kept)
	}
	// A writer appends after the repaired end.
	w, err := Create(p, Header{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(Record{Row: 3, Key: "b", Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st, err = Load(p); err != nil || st.Final.Len() != 2 {
		t.Fatalf("after append: %v %v", err, st)
	}
}

func TestLoadRefusesDamageBeforeTheEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	body := `{"type":"run"}` + "\n" + `garbage` + "\n" + `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "byte 15") {
		t.Fatalf("err = %v, want damage at byte 15", err)
	}
}

func TestSecondWriterIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, err := Create(p, Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = Create(p, Header{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by synbatch pid %d", os.Getpid())) {
		t.Fatalf("second writer: %v", err)
	}
}

func TestSummaryLatestRecordWins(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, _ := Create(p, Header{Manifest: "m.csv", Server: "https://hs"})
	w.Append(Record{Row: 2, Key: "a", Outcome: Failed, Status: 503, Error: "boom"})
	w.Append(Record{Row: 2, Key: "a", Outcome: Done})
	w.Append(Record{Row: 3, Key: "b", Outcome: Failed, Status: 400, Errcode: "M_INVALID_USERNAME", Error: "bad"})
	w.Append(Record{Type: "begin", Row: 4, Key: "c"})
	w.Close()
	s, err := Summarize(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 2 || s.Outcomes["done"] != 1 || s.Outcomes["failed"] != 1 || len(s.Failed) != 1 || s.Failed[0].Row != 3 || s.Pending != 1 {
		t.Fatalf("summary %+v", s)
	}
}

func TestStaleLockIsReportedAndCleared(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	// What a run killed with -9 leaves: the lock file with its name, no flock.
	if err := os.WriteFile(p+".lock", []byte("synbatch pid 99999 on host since 2026-01-01T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Create(p, Header{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Stale, "pid 99999") {
		t.Fatalf("stale = %q", w.Stale)
	}
	w.Close()
	if b, _ := os.ReadFile(p + ".lock"); len(b) != 0 {
		t.Fatalf("the lock file still names a holder: %q", b)
	}
}

// TestCutAtEveryOffsetOfTheLastRecord is a kill at every possible moment of
// the last write: each prefix loads, keeps every earlier record, and is
// repaired to end on a whole line.
func TestCutAtEveryOffsetOfTheLastRecord(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	w, err := Create(full, Header{Manifest: "m.csv"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Append(Record{Row: i + 2, Key: fmt.Sprint("k", i), UserID: "@u:hs", Outcome: Done, Changed: []string{"displayname"}})
	}
	w.Close()
	b, _ := os.ReadFile(full)
	lastStart := strings.LastIndex(strings.TrimSuffix(string(b), "\n"), "\n") + 1
	for cut := lastStart; cut <= len(b); cut++ {
		p := filepath.Join(dir, fmt.Sprint("cut", cut))
		os.WriteFile(p, b[:cut], 0o600)
		st, err := Load(p)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		// A record without its newline counts as torn too: its row is
		// simply planned again, which finds it applied.
		want := 4
		if cut == len(b) {
			want = 5
		}
		if st.Final.Len() != want {
			t.Fatalf("cut at %d: %d final rows, want %d", cut, st.Final.Len(), want)
		}
		after, _ := os.ReadFile(p)
		if len(after) > 0 && after[len(after)-1] != '\n' {
			t.Fatalf("cut at %d: not repaired to a whole line: %q", cut, after[max(0, len(after)-20):])
		}
	}
}

func TestFlippedByteInTheMiddleStopsWithItsOffset(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, _ := Create(p, Header{})
	for i := range 5 {
		w.Append(Record{Row: i + 2, Key: fmt.Sprint("k", i), Outcome: Done})
	}
	w.Close()
	b, _ := os.ReadFile(p)
	lines := strings.SplitAfter(string(b), "\n")
	off := len(lines[0]) + len(lines[1])
	b[off+1] = '#' // the second record's first key
	os.WriteFile(p, b, 0o600)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte %d", off)) {
		t.Fatalf("err = %v, want damage at byte %d", err, off)
	}
}

func TestLoadDoesNotCutALiveRunsLastLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, err := Create(p, Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// What a reader may see while the live run is half-way through a write.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"type":"row","row":2,"key":"a","outc`)
	f.Close()
	before, _ := os.ReadFile(p)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Load = %v, want the lock's holder named", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Fatal("Load cut a live run's journal")
	}
}
