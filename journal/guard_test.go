package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadAndCreateRefuseWhatIsNotAJournal: a file at the journal path that
// synbatch did not write (or a symlink there, whatever it points to) is
// refused before anything is cut, moved or appended.
func TestLoadAndCreateRefuseWhatIsNotAJournal(t *testing.T) {
	journal := `{"type":"run","tool":"synbatch","manifest":"m.csv"}` + "\n" + `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
	for _, c := range []struct {
		name, body, link string // link: the journal path is a symlink to a file with body
		why              string
	}{
		{name: "one line of notes, no newline", body: "remember the milk", why: "not a synbatch journal"},
		{name: "notes", body: "line one\nline two\n", why: "not a synbatch journal"},
		{name: "a manifest", body: "user_id,displayname\nalice,Alice\n", why: "not a synbatch journal"},
		{name: "JSON of another tool", body: `{"type":"run","tool":"other"}` + "\n", why: "not a synbatch journal"},
		{name: "a JSON line that is no run", body: `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n", why: "not a synbatch journal"},
		{name: "symlink to notes", body: "notes", link: "target", why: "symbolic link"},
		{name: "symlink to a journal", body: journal, link: "target", why: "symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "j")
			file := p
			if c.link != "" {
				file = filepath.Join(dir, c.link)
				if err := os.Symlink(file, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(file, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, lerr := Load(p)
			w, cerr := Create(p, Header{Tool: "synbatch"})
			if cerr == nil {
				w.Close()
			}
			for _, err := range []error{lerr, cerr} {
				if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.why) {
					t.Errorf("err = %v, want ErrForeign naming %s and %q", err, p, c.why)
				}
			}
			if b, _ := os.ReadFile(file); string(b) != c.body {
				t.Errorf("the file was changed to %q", b)
			}
			if _, err := os.Lstat(p + ".torn"); err == nil {
				t.Error("a .torn file was written")
			}
		})
	}
}

// TestEmptyFileAndTornHeaderAreJournals: an empty file is a new journal, and
// a first record torn by a kill is a journal's, repaired as any torn tail.
func TestEmptyFileAndTornHeaderAreJournals(t *testing.T) {
	for _, body := range []string{"", `{"type":"ru`, `{"type":"run","tool":"synbatch","vers`} {
		p := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		w, err := Create(p, Header{Tool: "synbatch"})
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		w.Close()
	}
}

// TestLockAndTornFilesAreNeverFollowed: a symlink planted at JOURNAL.lock or
// JOURNAL.torn is refused, and its target left as it was.
func TestLockAndTornFilesAreNeverFollowed(t *testing.T) {
	for _, suffix := range []string{".lock", ".torn"} {
		t.Run(suffix, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "j")
			// A journal whose last line is torn, so that Load writes .torn.
			body := `{"type":"run","tool":"synbatch"}` + "\n" + `{"type":"row","row":2,"ke`
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "precious")
			if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p+suffix); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("Load: err = %v, want the symbolic link refused", err)
			}
			if suffix == ".lock" {
				if w, err := Create(p, Header{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
					if err == nil {
						w.Close()
					}
					t.Errorf("Create: err = %v, want the symbolic link refused", err)
				}
			}
			if b, _ := os.ReadFile(target); string(b) != "precious\n" {
				t.Errorf("the link's target was changed to %q", b)
			}
			if b, _ := os.ReadFile(p); string(b) != body {
				t.Errorf("the journal was changed to %q", b)
			}
		})
	}
}

// TestValidJSONWithUnknownValuesIsDamage: a flipped byte that leaves valid
// JSON (done -> dOne) is damage, reported with its byte offset, by Load
// and by Summarize, wherever the line is, the last one included.
func TestValidJSONWithUnknownValuesIsDamage(t *testing.T) {
	head := `{"type":"run","tool":"synbatch"}` + "\n"
	good := `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
	for _, c := range []struct{ name, bad string }{
		{"outcome dOne", `{"type":"row","row":3,"key":"b","outcome":"dOne"}`},
		{"outcome fAiled", `{"type":"row","row":3,"key":"b","user_id":"@b:hs","outcome":"fAiled"}`},
		{"no outcome", `{"type":"row","row":3,"key":"b"}`},
		{"type rOw", `{"type":"rOw","row":3,"key":"b","outcome":"done"}`},
		{"type bEgin", `{"type":"bEgin","row":3,"key":"b"}`},
		{"no type", `{"row":3,"key":"b","outcome":"done"}`},
		{"row without key", `{"type":"row","row":3,"key":"","outcome":"done"}`},
		{"begin without key", `{"type":"begin","row":3}`},
		{"key with a flipped case", `{"type":"row","row":3,"key":"Ab","outcome":"done"}`},
		{"task without id", `{"type":"task","row":3,"key":"b"}`},
		{"negative row", `{"type":"row","row":-3,"key":"b","outcome":"done"}`},
		{"run of another tool", `{"type":"run","tool":"synbaTch"}`},
	} {
		for _, last := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/last=%t", c.name, last), func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "j")
				body := head + good + c.bad + "\n"
				if !last {
					body += good
				}
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				off := fmt.Sprintf("byte %d", len(head)+len(good))
				if _, err := Load(p); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), off) {
					t.Errorf("Load: err = %v, want ErrDamaged at %s", err, off)
				}
				if _, err := Summarize(p); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), off) {
					t.Errorf("Summarize: err = %v, want ErrDamaged at %s", err, off)
				}
				if b, _ := os.ReadFile(p); string(b) != body {
					t.Errorf("the damaged journal was changed to %q", b)
				}
			})
		}
	}
}

// TestEveryRecordWriterWritesLoads: what Writer writes (every record type
// and outcome, and an old journal's header without a tool) loads.
func TestEveryRecordWriterWritesLoads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	old := `{"type":"run","manifest":"m.csv","manifest_sha256":"ab","server":"https://hs","started":"2026-01-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Create(p, Header{Tool: "synbatch", Version: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Type: "begin", Row: 2, Key: "0a1b"},
		{Type: "task", Row: 2, Key: "0a1b", Task: "t-1"},
		{Row: 2, Key: "0a1b", UserID: "@a:hs", Action: "upsert", Outcome: Done, Changed: []string{"displayname"}},
		{Row: 3, Key: "c3", Outcome: Unchanged},
		{Row: 4, Key: "d4", Outcome: Skipped, Note: "duplicate of row 3"},
		{Row: 5, Key: "e5", Outcome: Failed, Status: 400, Errcode: "M_X", Error: "bad"},
		{Row: 6, Key: "f6", Outcome: Uncertain},
	}
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(End{Outcomes: map[string]int{"done": 1}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	st, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 2 || !st.Final.Has("0a1b") || !st.Final.Has("c3") || !st.Final.Has("d4") || st.Final.Has("e5") || st.Tasks["0a1b"] != "t-1" {
		t.Fatalf("runs %d final %d tasks %v", len(st.Runs), st.Final.Len(), st.Tasks)
	}
	if _, err := Summarize(p); err != nil {
		t.Fatal(err)
	}
}

// TestLockedAndDamagedJournalsAreTyped: the caller can tell a journal in
// use and a damaged journal from an I/O failure (they are usage problems:
// nothing was sent).
func TestLockedAndDamagedJournalsAreTyped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	w, err := Create(p, Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Create(p, Header{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Create: %v, want ErrLocked", err)
	}
	d := filepath.Join(t.TempDir(), "d")
	os.WriteFile(d, []byte(`{"type":"run"}`+"\ngarbage\n{}\n"), 0o600)
	if _, err := Load(d); !errors.Is(err, ErrDamaged) {
		t.Errorf("Load of damage: %v, want ErrDamaged", err)
	}
}
