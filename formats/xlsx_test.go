package formats

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// cells maps cell references to values for SetCellValue; a value of type
// rawNumber is written with SetCellDefault, so the XML holds that exact text
// as a numeric cell (the way Excel and other writers may store a number).
type cells map[string]any

// rawNumber is the literal text of a numeric cell's <v> element.
type rawNumber string

// writeXLSX builds a workbook with the given sheets, in order, and returns
// its path.
func writeXLSX(t testing.TB, sheets []string, content map[string]cells) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, name := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		for ref, v := range content[name] {
			var err error
			if raw, ok := v.(rawNumber); ok {
				err = f.SetCellDefault(name, ref, string(raw))
			} else {
				err = f.SetCellValue(name, ref, v)
			}
			if err != nil {
				t.Fatalf("%s!%s: %v", name, ref, err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "m.xlsx")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// zipEntry returns one part of a workbook, to check what a test exercises.
func zipEntry(t *testing.T, path, name string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("%s has no %s", path, name)
	return ""
}

// usersSheet is a sheet with a shared-strings header, numeric phone
// numbers in several forms, an inline string, blank rows and a row with
// only spaces.
func usersSheet() cells {
	return cells{
		"A1": "User_ID", "B1": " msisdns ", "C1": "Note",
		"A2": "alice", "B2": int64(447470274584), "C2": "shared string",
		// Row 3 is missing from the XML, row 4 has only blank text.
		"A4": "   ",
		"A5": "@bob:synbatch.test", "B5": 447470274584.0, "C5": rawNumber("1.5"),
		"A6": "carol", "B6": rawNumber("4.47470274584E+11"),
		"A7": "dave", "B7": int64(9007199254740993), // above 2^53: kept as written
		"A9": "erin", "B9": rawNumber("1.2345678901234567E+16"), "C9": true,
	}
}

func TestXLSX(t *testing.T) {
	path := writeXLSX(t, []string{"Notes", "Users", "Empty", "Problems", "Late"}, map[string]cells{
		"Notes": {"A1": "Title", "A2": "read the Users sheet"},
		"Users": usersSheet(),
		"Problems": {
			"A1": "email", "B1": " EMAIL", "D1": "d",
			"A2": 1, "B2": 2, "C2": 3, "D2": 4,
			"A3": 5, "C3": 6, "F3": 7,
			"A4": 8,
		},
		"Late": {"C3": "User_ID", "C5": "alice", "A6": "stray"},
	})
	if !strings.Contains(zipEntry(t, path, "xl/sharedStrings.xml"), "shared string") {
		t.Fatal("the test workbook has no shared-strings table")
	}
	// Problems name the file as given to Open.
	t.Chdir(filepath.Dir(path))
	path = filepath.Base(path)
	users := []string{
		"2 msisdns=447470274584 note=shared string user_id=alice",
		"5 msisdns=447470274584 note=1.5 user_id=@bob:synbatch.test",
		"6 msisdns=447470274584 user_id=carol",
		"7 msisdns=9007199254740993 user_id=dave",
		"9 msisdns=1.2345678901234567E+16 note=true user_id=erin",
	}
	tests := []struct {
		name    string
		sheet   string
		cols    []string
		want    []string
		wantErr string
	}{
		{name: "first sheet by default", cols: []string{"title"}, want: []string{"2 title=read the Users sheet"}},
		{name: "named sheet", sheet: "Users", cols: []string{"user_id", "msisdns", "note"}, want: users},
		{name: "sheet name ignores case", sheet: "USERS", cols: []string{"user_id", "msisdns", "note"}, want: users},
		{name: "header below blank rows", sheet: "Late", cols: []string{"user_id"}, want: []string{
			"5 user_id=alice", "! m.xlsx:3:column A: the header cell is empty but row 6 has data in this column"}},
		{name: "empty sheet", sheet: "Empty", want: []string{"! m.xlsx:1: the sheet is empty: no header row"}},
		{
			name:  "header problems",
			sheet: "Problems",
			cols:  []string{"email", "d"},
			want: []string{
				`! m.xlsx:1:EMAIL: column "email" appears twice (columns A and B)`,
				"! m.xlsx:1:column C: the header cell is empty but row 2 has data in this column",
				"2 d=4 email=1",
				"! m.xlsx:1:column F: the header cell is empty but row 3 has data in this column",
				"3 email=5",
				"4 email=8",
			},
		},
		{name: "missing sheet", sheet: "Nope", wantErr: `m.xlsx: no sheet named "Nope"; the workbook has "Notes", "Users", "Empty", "Problems", "Late"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(path, Options{Sheet: tt.sheet})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tt.cols != nil && !slices.Equal(r.Columns(), tt.cols) {
				t.Errorf("Columns() = %q, want %q", r.Columns(), tt.cols)
			}
			if got := events(t, r); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestXLSXRawValues pins what excelize returns for cells in raw mode and
// what the reader makes of it.
func TestXLSXRawValues(t *testing.T) {
	tests := []struct {
		name string
		cell any
		want string
	}{
		{"int64 phone number", int64(447470274584), "447470274584"},
		{"float64 phone number", 447470274584.0, "447470274584"},
		{"exponent form as Excel may store it", rawNumber("4.47470274584E+11"), "447470274584"},
		{"lower-case exponent", rawNumber("4.47470274584e+11"), "447470274584"},
		{"integer above 2^53 is kept", int64(9007199254740993), "9007199254740993"},
		{"float64 above 2^53 is written rounded", float64(9007199254740993), "9007199254740992"},
		{"exponent form with 17 digits is kept", rawNumber("1.2345678901234567E+16"), "1.2345678901234567E+16"},
		{"fraction in exponent form is kept", rawNumber("1.5E-3"), "1.5E-3"},
		{"decimal form is kept", rawNumber("447470274584.0"), "447470274584.0"},
		{"fraction", 1.25, "1.25"},
		{"boolean cell reads by its type", true, "true"},
		{"false boolean cell", false, "false"},
		{"text that looks like a number", "4.47470274584E+11", "447470274584"},
		{"text without an exponent sign", "2e10", "2e10"},
		{"text with leading zero", "01234", "01234"},
	}
	content := cells{"A1": "name", "B1": "value"}
	for i, tt := range tests {
		row := strconv.Itoa(i + 2)
		content["A"+row] = "row" + row
		content["B"+row] = tt.cell
	}
	path := writeXLSX(t, []string{"Sheet1"}, map[string]cells{"Sheet1": content})
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, tt := range tests {
		row, err := r.Next()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if row.Num != i+2 {
			t.Errorf("%s: row %d, want %d", tt.name, row.Num, i+2)
		}
		if got := row.Fields["value"].Value; got != tt.want {
			t.Errorf("%s: value = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestIntegerDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4.47470274584E+11", "447470274584"},
		{"4.47470274584e+11", "447470274584"},
		{"4.4747027458E+11", "447470274580"},
		{"-4.5E+3", "-4500"},
		{"+4.5E+3", "4500"},
		{"45E+1", "450"},
		{"0.45E+3", "450"},
		{"1E+21", "1000000000000000000000"},
		{"1.00E+02", "100"},
		{"0E+00", "0"},
		{"4.4747027458400001E+11", "4.4747027458400001E+11"}, // 17 significant digits
		{"123456789012345E+0", "123456789012345"},
		{"1234567890123456E+0", "1234567890123456E+0"},
		{"1.5E+0", "1.5E+0"},
		{"1.5E-3", "1.5E-3"},
		{"1E+400", "1E+400"},
		{"2e10", "2e10"},
		{"1E5", "1E5"},
		{"E+5", "E+5"},
		{"1.E+5", "1.E+5"},
		{".5E+1", ".5E+1"},
		{"1.5E+", "1.5E+"},
		{"1E+5E+3", "1E+5E+3"},
		{"1E+99999", "1E+99999"},
		{"Eve", "Eve"},
		{"447470274584", "447470274584"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := integerDigits(tt.in); got != tt.want {
			t.Errorf("integerDigits(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestXLSXDateCellsReadAsDates: a number shown as a date (a built-in or a
// custom date format) reads as an ISO 8601 date, or date and time, in the
// workbook's date system; other numbers stay numbers.
func TestXLSXDateCellsReadAsDates(t *testing.T) {
	for _, date1904 := range []bool{false, true} {
		f := excelize.NewFile()
		if err := f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &date1904}); err != nil {
			t.Fatal(err)
		}
		builtin, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
		custom := "yyyy-mm-dd"
		iso, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &custom})
		stamp := "dd/mm/yyyy hh:mm"
		withTime, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &stamp})
		quoted := `0.00" days"`
		notDate, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &quoted})
		// Serial numbers of 2026-01-31 in each date system.
		serial := 46053.0
		if date1904 {
			serial -= 1462
		}
		for _, c := range []struct {
			ref   string
			v     any
			style int
		}{
			{"A1", "name", 0}, {"B1", "value", 0},
			{"B2", serial, builtin},
			{"B3", serial, iso},
			{"B4", serial + 0.4375, withTime}, // 10:30
			{"B5", serial, notDate},
			{"B6", serial, 0},
		} {
			if err := f.SetCellValue("Sheet1", c.ref, c.v); err != nil {
				t.Fatal(err)
			}
			if c.style != 0 {
				if err := f.SetCellStyle("Sheet1", c.ref, c.ref, c.style); err != nil {
					t.Fatal(err)
				}
			}
			if c.ref != "A1" && c.ref != "B1" {
				_ = f.SetCellValue("Sheet1", "A"+c.ref[1:], "x")
			}
		}
		path := filepath.Join(t.TempDir(), "d.xlsx")
		if err := f.SaveAs(path); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"2026-01-31", "2026-01-31", "2026-01-31T10:30:00", strconv.FormatFloat(serial, 'f', -1, 64), strconv.FormatFloat(serial, 'f', -1, 64)}
		for i, w := range want {
			row, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if got := row.Fields["value"].Value; got != w {
				t.Errorf("1904=%v row %d: %q, want %q", date1904, i+2, got, w)
			}
		}
		r.Close()
	}
}

func TestExcelSerialDates(t *testing.T) {
	for _, c := range []struct {
		serial   string
		date1904 bool
		want     string
	}{
		{"1", false, "1900-01-01"},
		{"59", false, "1900-02-28"},
		{"61", false, "1900-03-01"},
		{"46053", false, "2026-01-31"},
		{"46053.5", false, "2026-01-31T12:00:00"},
		{"0", true, "1904-01-01"},
		{"2958465", false, "9999-12-31"},
	} {
		got, ok := excelDate(c.serial, c.date1904)
		if !ok || got != c.want {
			t.Errorf("%s (1904=%v): %q %v, want %q", c.serial, c.date1904, got, ok, c.want)
		}
	}
	for _, bad := range []string{"60", "-1", "2958466", "x"} {
		if got, ok := excelDate(bad, false); ok {
			t.Errorf("%s: %q, want no date", bad, got)
		}
	}
}

// TestXLSXWriterShowsValuesAsTheyAre: a text cell is never evaluated, so
// the XLSX writer puts no ' before a value that starts like a formula; it
// keeps one only where the reader needs it to read the value back exactly
// (a value that starts with ' itself, or starts or ends with white space).
// Every value reads back exactly.
func TestXLSXWriterShowsValuesAsTheyAre(t *testing.T) {
	values := []string{`=HYPERLINK("http://x")`, "@alice:hs.test", "+44 7700 900123", "-minus", "'quoted", "'=both", " Alice ", "\tTab", "plain", "=x ", "@y\t"}
	shown := []string{`=HYPERLINK("http://x")`, "@alice:hs.test", "+44 7700 900123", "-minus", "''quoted", "''=both", "' Alice ", "'\tTab", "plain", "'=x ", "'@y\t"}
	path := filepath.Join(t.TempDir(), "out.xlsx")
	w, err := Create(path, []string{"user_id", "displayname"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if err := w.Write([]any{"u" + strconv.Itoa(i), v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range shown {
		ref := "B" + strconv.Itoa(i+2)
		got, _ := f.GetCellValue("Sheet1", ref, excelize.Options{RawCellValue: true})
		if formula, _ := f.GetCellFormula("Sheet1", ref); formula != "" {
			t.Errorf("%s is a formula: %s", ref, formula)
		}
		if got != want {
			t.Errorf("%s shows %q, want %q", ref, got, want)
		}
	}
	f.Close()
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, want := range values {
		row, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := row.Fields["displayname"].Value; got != want {
			t.Errorf("read back %q, want %q", got, want)
		}
	}
}

// TestXLSXQuotePrefixKeepsALeadingQuote: a cell typed ”=x in Excel holds
// the text '=x with the quotePrefix style; its ' is part of the value, not
// a guard of synbatch's, and stays. Without that style a leading ' before a
// formula-like value is an older export's guard, and goes, as before.
func TestXLSXQuotePrefixKeepsALeadingQuote(t *testing.T) {
	plain := handXLSX(t, []handSheet{{name: "Sheet1", data: inlineRow(1, "user_id", "displayname") +
		`<row r="2"><c r="A2" t="inlineStr"><is><t>a</t></is></c><c r="B2" t="inlineStr" s="1"><is><t>'=x</t></is></c></row>` +
		`<row r="3"><c r="A3" t="inlineStr"><is><t>b</t></is></c><c r="B3" t="inlineStr"><is><t>'=y</t></is></c></row>` +
		`<row r="4"><c r="A4" t="inlineStr"><is><t>c</t></is></c><c r="B4" t="inlineStr" s="1"><is><t>=z</t></is></c></row>`}}, nil)
	path := withPart(t, plain, "xl/styles.xml", `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`+
		`<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="0" quotePrefix="1"/></cellXfs></styleSheet>`)
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, want := range []string{"'=x", "=y", "=z"} {
		row, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := row.Fields["displayname"].Value; got != want {
			t.Errorf("row %d: %q, want %q", row.Num, got, want)
		}
	}
}

// withPart copies the workbook at path with one part added.
func withPart(t *testing.T, path, name, content string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := filepath.Join(t.TempDir(), "styled.xlsx")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range zr.File {
		if err := zw.Copy(e); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := zw.Create(name)
	io.WriteString(w, content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
