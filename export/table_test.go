package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func twoRows(write func([]any) error) error {
	if err := write([]any{"@a:hs.test", 1}); err != nil {
		return err
	}
	return write([]any{"@b:hs.test", nil})
}

// TestTableOutFileIsWholeAndPrivate: a table written to a file is there
// whole after write returns, created 0600 (registration tokens let anyone
// register), in the format of its extension, with no temporary file left.
func TestTableOutFileIsWholeAndPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, want := range map[string]string{
		"t.csv":   "id,n\n'@a:hs.test,1\n'@b:hs.test,\n",
		"t.tsv":   "id\tn\n'@a:hs.test\t1\n'@b:hs.test\t\n",
		"t.jsonl": `{"id":"@a:hs.test","n":1}` + "\n" + `{"id":"@b:hs.test"}` + "\n",
	} {
		out := filepath.Join(dir, name)
		if err := (tableOut{out: out, format: "jsonl"}).write([]string{"id", "n"}, twoRows); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s holds %q, want %q", name, b, want)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	assertNoTemp(t, dir)
}

// TestTableOutStdout: with out "-" the table goes to stdout in the format
// given, and no file is made.
func TestTableOutStdout(t *testing.T) {
	t.Parallel()
	for format, want := range map[string]string{
		"csv":   "id,n\n'@a:hs.test,1\n'@b:hs.test,\n",
		"jsonl": `{"id":"@a:hs.test","n":1}` + "\n" + `{"id":"@b:hs.test"}` + "\n",
	} {
		var buf bytes.Buffer
		if err := (tableOut{out: "-", format: format, stdout: &buf}).write([]string{"id", "n"}, twoRows); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if buf.String() != want {
			t.Errorf("%s: stdout %q, want %q", format, buf.String(), want)
		}
	}
	var buf bytes.Buffer
	if err := (tableOut{out: "-", format: "xlsx", stdout: &buf}).write([]string{"id"}, twoRows); err == nil || !strings.Contains(err.Error(), "want csv or jsonl") {
		t.Errorf("format xlsx to stdout: err = %v, want one naming csv or jsonl", err)
	}
}

// TestTableOutRowsErrorIsReturnedAndFileClosed: an error from the rows
// is write's error as it is, and the file is closed (no temporary file
// stays behind).
func TestTableOutRowsErrorIsReturnedAndFileClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stop := errors.New("stop")
	err := (tableOut{out: filepath.Join(dir, "t.csv")}).write([]string{"id"}, func(write func([]any) error) error {
		if err := write([]any{"x"}); err != nil {
			return err
		}
		return stop
	})
	if err != stop {
		t.Errorf("err = %v, want %v", err, stop)
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}
