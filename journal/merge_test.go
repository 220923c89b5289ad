package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeShard writes a journal of one run with the given row keys, all done.
func writeShard(t *testing.T, path string, keys ...string) {
	t.Helper()
	w, err := Create(path, Header{Manifest: "m.csv"})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if err := w.Append(Record{Row: i + 2, Key: k, Outcome: Done}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMergeWritesTheJournalsOneAfterTheOther: whole journals are copied
// byte for byte, in the order given, to a new 0600 file that loads as one
// journal of their runs.
func TestMergeWritesTheJournalsOneAfterTheOther(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, out := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "all")
	writeShard(t, a, "k1", "k2")
	writeShard(t, b, "k3")
	if err := Merge(out, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	got, _ := os.ReadFile(out)
	if string(got) != string(ab)+string(bb) {
		t.Fatalf("merged journal:\n%s\nwant a then b:\n%s%s", got, ab, bb)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("merged journal mode: %v %v", fi, err)
	}
	st, err := Load(out)
	if err != nil || len(st.Runs) != 2 || st.Final.Len() != 3 || st.Repaired != "" {
		t.Fatalf("the merged journal loads as %+v, %v; want 2 runs, 3 finished rows", st, err)
	}
}

// TestMergeLeavesOutATornTail: a shard killed mid-record merges without its
// torn line, which would otherwise sit in the middle of the merged journal
// and make every reader refuse it as damage.
func TestMergeLeavesOutATornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, out := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "all")
	writeShard(t, a, "k1", "k2")
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"row","row":4,"key":"k9","outc`)
	f.Close()
	writeShard(t, b, "k3")
	if err := Merge(out, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	sum, err := SummarizeAll(a, b)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Load(out)
	if err != nil || st.Repaired != "" || st.Records != sum.Rows || st.Records != 3 {
		t.Fatalf("merged journal: %+v, %v; want the 3 rows summary counts (%d), nothing torn", st, err, sum.Rows)
	}
}

// TestMergeRefusesAnOutputThatIsThere: an existing file or a link at the
// output path is refused with ErrMergeOutput and left as it was.
func TestMergeRefusesAnOutputThatIsThere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	writeShard(t, a, "k1")
	file, link, target := filepath.Join(dir, "file"), filepath.Join(dir, "link"), filepath.Join(dir, "target")
	for _, p := range []string{file, target} {
		if err := os.WriteFile(p, []byte("mine\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{file, link} {
		if err := Merge(out, []string{a}); !errors.Is(err, ErrMergeOutput) {
			t.Errorf("merge to %s: %v, want ErrMergeOutput", out, err)
		}
	}
	for _, p := range []string{file, target} {
		if b, _ := os.ReadFile(p); string(b) != "mine\n" {
			t.Errorf("%s was changed: %q", p, b)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was changed: %v %v", fi, err)
	}
}

// TestMergeOfDamageLeavesNoOutput: a damaged journal is an error, and the
// half-written merged journal is removed rather than left to be resumed.
func TestMergeOfDamageLeavesNoOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, out := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "all")
	writeShard(t, a, "k1")
	if err := os.WriteFile(b, []byte(runLine+"garbage\n"+rowA), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Merge(out, []string{a, b}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("merge: %v, want ErrDamaged", err)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a merged journal is left: %v", err)
	}
}
