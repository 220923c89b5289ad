package formats

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostileCells are values a user can set (a display name, an external id)
// that a spreadsheet could run or a reader could change.
var hostileCells = []string{
	"x;=1+41;", "a,=1+1", "line\n=1+1", "cr\r@SUM(A1)", "tab\t-2+3", "=HYPERLINK(\"x\")", "+41", "-1", "@me",
	" spaced ", "'quoted", "a;'=b", "a;'", "x;\"=1\"", "q\"uo\"te", "a;b,c", ";=", "\n\n=x", "plain", "caf\u00e9;=2",
	"back\\slash;x", "\\;",
}

// TestEveryCellSurvivesBothSeparatorsAndComesBack: every hostile value,
// written to CSV, TSV and XLSX, reads back as written; and no piece of the
// CSV text, cut at every ';', ',', tab and line break as a reader with the
// other separator (or one ignoring quotes) would, starts a formula.
func TestEveryCellSurvivesBothSeparatorsAndComesBack(t *testing.T) {
	for _, ext := range []string{".csv", ".tsv", ".xlsx"} {
		t.Run(ext, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out"+ext)
			w, err := Create(p, []string{"user_id", "displayname", "external_ids"})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range hostileCells {
				if err := w.Write([]any{"@u" + string(rune('a'+i)) + ":hs", v, []string{"oidc/" + v, v + "2"}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i, v := range hostileCells {
				row, err := r.Next()
				if err != nil {
					t.Fatalf("row %d: %v", i+2, err)
				}
				if got := row.Fields["displayname"].Value; got != v {
					t.Errorf("%s: %q read back as %q", ext, v, got)
				}
				if got, want := SplitList(row.Fields["external_ids"].Value), []string{"oidc/" + v, v + "2"}; !slices.Equal(got, want) {
					t.Errorf("%s: list %q read back as %q", ext, want, got)
				}
			}
			if ext == ".xlsx" {
				return
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, piece := range strings.FieldsFunc(string(raw), func(r rune) bool { return strings.ContainsRune(";,\t\r\n", r) }) {
				if s := strings.TrimLeft(piece, "\""); s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
					t.Errorf("%s: the piece %q of the file starts a formula", ext, piece)
				}
			}
		})
	}
}

// TestEscapeRoundTrips: Unescape undoes Escape and escapeText for values
// built from the bytes that matter, in every order up to four long.
func TestEscapeRoundTrips(t *testing.T) {
	alphabet := []string{"=", "'", ";", ",", "\n", "\"", "a", " ", "\\"}
	var vals []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		vals = append(vals, prefix)
		if n == 0 {
			return
		}
		for _, a := range alphabet {
			grow(prefix+a, n-1)
		}
	}
	grow("", 4)
	for _, v := range vals {
		if got := Unescape(Escape(v)); got != v {
			t.Fatalf("Unescape(Escape(%q)) = %q", v, got)
		}
		if got := Unescape(escapeText(v)); got != v {
			t.Fatalf("Unescape(escapeText(%q)) = %q", v, got)
		}
		if got := SplitList(JoinList([]string{v, v})); !slices.Equal(got, []string{v, v}) {
			t.Fatalf("SplitList(JoinList(%q)) = %q", v, got)
		}
	}
}
