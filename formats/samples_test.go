package formats

import (
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestSamples reads the sample manifests the README and the integration
// tests use: the three files must hold the same users once CSV and XLSX
// cells are split on ';' the way the caller splits them.
func TestSamples(t *testing.T) {
	read := func(path string) []string {
		t.Helper()
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		wantCols := []string{"user_id", "displayname", "password", "emails", "msisdns", "external_ids", "admin"}
		var out []string
		for _, line := range events(t, r) {
			if strings.HasPrefix(line, "! ") {
				t.Errorf("%s: %s", path, line)
			}
			out = append(out, line)
		}
		if !slices.Equal(r.Columns(), wantCols) {
			t.Errorf("%s: Columns() = %q, want %q", path, r.Columns(), wantCols)
		}
		return out
	}
	// Rows as the caller sees them: lists split, the row number dropped
	// (JSONL counts lines, the others spreadsheet rows).
	normalised := func(path string) []string {
		t.Helper()
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for {
			row, err := r.Next()
			if err != nil {
				break
			}
			row.Num = 0
			for k, f := range row.Fields {
				if f.List == nil && strings.Contains(f.Value, ";") {
					f.List = strings.Split(f.Value, ";")
				}
				if f.List == nil && (k == "emails" || k == "msisdns" || k == "external_ids") {
					f.List = []string{f.Value}
				}
				row.Fields[k] = f
			}
			out = append(out, renderRow(row))
		}
		return out
	}

	csvRows := read("../samples/users.csv")
	xlsxRows := read("../samples/users.xlsx")
	read("../samples/users.jsonl")
	if len(csvRows) != 5 || !slices.Equal(csvRows, xlsxRows) {
		t.Errorf("users.csv and users.xlsx differ:\n%q\n%q", csvRows, xlsxRows)
	}
	want := normalised("../samples/users.csv")
	for _, other := range []string{"../samples/users.xlsx", "../samples/users.jsonl"} {
		if got := normalised(other); !slices.Equal(got, want) {
			t.Errorf("%s differs from users.csv:\n got  %q\n want %q", other, got, want)
		}
	}
	if !strings.Contains(csvRows[0], "msisdns=447700900101") {
		t.Errorf("first sample row = %q, want msisdns=447700900101", csvRows[0])
	}

	// The XLSX sample must keep its phone numbers in numeric cells, so that
	// it exercises the digits rule.
	f, err := excelize.OpenFile("../samples/users.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, ref := range []string{"E2", "E3", "E4", "E6"} {
		if typ, err := f.GetCellType("users", ref); err != nil || typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
			t.Errorf("users.xlsx %s: cell type %v (%v), want a number", ref, typ, err)
		}
		if v, _ := f.GetCellValue("users", ref, excelize.Options{RawCellValue: true}); !strings.HasPrefix(v, "4477009001") {
			t.Errorf("users.xlsx %s = %q, want a phone number", ref, v)
		}
	}
}
