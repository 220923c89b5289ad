package formats

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// events drains r and renders what it produced, in order: a row as
// "NUM key=value key=value" with keys sorted (lists as key=[a|b]), a problem
// as "! " followed by its message. A fatal error fails the test.
func events(t *testing.T, r Reader) []string {
	t.Helper()
	var out []string
	for range 10000 {
		row, err := r.Next()
		var p *Problem
		switch {
		case errors.Is(err, io.EOF):
			return out
		case errors.As(err, &p):
			out = append(out, "! "+p.Error())
		case err != nil:
			t.Fatalf("Next: fatal error after %q: %v", out, err)
		default:
			out = append(out, renderRow(row))
		}
	}
	t.Fatalf("Next never returned io.EOF; got %q", out)
	return nil
}

// renderRow renders a row for comparisons.
func renderRow(row Row) string {
	keys := make([]string, 0, len(row.Fields))
	for k := range row.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(strconv.Itoa(row.Num))
	for _, k := range keys {
		f := row.Fields[k]
		b.WriteString(" " + k + "=")
		if f.List != nil {
			b.WriteString("[" + strings.Join(f.List, "|") + "]")
		} else {
			b.WriteString(f.Value)
		}
	}
	return b.String()
}

// checkInvariants drains r the way a fuzz target does: it must end with
// io.EOF or a fatal error, rows must come in order with clean fields, and
// problems must carry a row.
func checkInvariants(t *testing.T, r Reader, limit int) {
	t.Helper()
	last := 0
	for range limit {
		row, err := r.Next()
		var p *Problem
		switch {
		case errors.Is(err, io.EOF):
			return
		case errors.As(err, &p):
			if p.Row < 1 {
				t.Fatalf("problem without a row: %v", p)
			}
			continue
		case err != nil:
			// Fatal errors must stay fatal.
			if _, again := r.Next(); again == nil {
				t.Fatalf("Next succeeded after the fatal error %v", err)
			}
			return
		}
		if row.Num <= last {
			t.Fatalf("row number %d after %d", row.Num, last)
		}
		last = row.Num
		if len(row.Fields) == 0 {
			t.Fatalf("row %d has no fields", row.Num)
		}
		for k, f := range row.Fields {
			if k == "" || k != normalise(k) {
				t.Fatalf("row %d: key %q is not normalised", row.Num, k)
			}
			if f.Value == "" || !utf8.ValidString(f.Value) {
				t.Fatalf("row %d: %s: bad value %q", row.Num, k, f.Value)
			}
		}
	}
	t.Fatalf("no io.EOF after %d calls to Next", limit)
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "users.csv", Row: 7, Column: "Email", Msg: "not an email"}, "users.csv:7:Email: not an email"},
		{Problem{File: "users.csv", Row: 3, Msg: "row has 4 cells, header has 3"}, "users.csv:3: row has 4 cells, header has 3"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		path    string
		opts    Options
		want    []string
		wantErr string
	}{
		{name: "csv", path: write("m.csv", "a,b\n1,2\n"), want: []string{"2 a=1 b=2"}},
		{name: "upper-case extension", path: write("M.CSV", "a;b\n1;2\n"), want: []string{"2 a=1 b=2"}},
		{name: "tsv forces tab", path: write("m.tsv", "a,b\tc\n1,2\t3\n"), want: []string{"2 a,b=1,2 c=3"}},
		{name: "jsonl", path: write("m.jsonl", `{"a":1}`+"\n"), want: []string{"1 a=1"}},
		{name: "ndjson", path: write("m.ndjson", `{"a":"x"}`), want: []string{"1 a=x"}},
		{name: "unknown extension", path: write("m.txt", ""), wantErr: `unknown format ".txt"`},
		{name: "xls", path: write("m.xls", ""), wantErr: "save it as .xlsx"},
		{name: "no extension", path: write("manifest", ""), wantErr: "no file extension"},
		{name: "sheet on csv", path: write("s.csv", "a\n"), opts: Options{Sheet: "x"}, wantErr: "only applies to .xlsx"},
		{name: "missing file", path: filepath.Join(dir, "gone.csv"), wantErr: "no such file"},
		{name: "missing xlsx", path: filepath.Join(dir, "gone.xlsx"), wantErr: "no such file"},
		{name: "xlsx that is not a zip", path: write("bad.xlsx", "a,b\n"), wantErr: "open manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.path, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := events(t, r); !slices.Equal(got, tt.want) {
				t.Errorf("rows = %q, want %q", got, tt.want)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestColumnLetter(t *testing.T) {
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA", 16383: "XFD"} {
		if got := columnLetter(i); got != want {
			t.Errorf("columnLetter(%d) = %q, want %q", i, got, want)
		}
	}
}
