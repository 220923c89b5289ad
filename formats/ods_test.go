package formats

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// handODS writes an OpenDocument spreadsheet from the XML of its automatic
// styles and its tables, as LibreOffice lays them out, and returns its path.
func handODS(t testing.TB, styles, tables string) string {
	t.Helper()
	const ns = `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" ` +
		`xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" ` +
		`xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"`
	content := `<?xml version="1.0" encoding="UTF-8"?><office:document-content ` + ns + ` office:version="1.3"><office:automatic-styles>` + styles +
		`</office:automatic-styles><office:body><office:spreadsheet>` + tables + `</office:spreadsheet></office:body></office:document-content>`
	path := filepath.Join(t.TempDir(), "m.ods")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	if err == nil {
		_, err = w.Write([]byte(odsMimeType))
	}
	if err == nil {
		w, err = zw.Create("content.xml")
	}
	if err == nil {
		_, err = w.Write([]byte(content))
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// odsTable is a table:table of rows.
func odsTable(name, style string, rows ...string) string {
	st := ""
	if style != "" {
		st = fmt.Sprintf(` table:style-name="%s"`, style)
	}
	return fmt.Sprintf(`<table:table table:name="%s"%s><table:table-column table:number-columns-repeated="1024"/>%s</table:table>`, name, st, strings.Join(rows, ""))
}

// odsRow is a table:table-row of string cells; LibreOffice's padding (the
// row's empty cells to the last column) follows them.
func odsRow(values ...string) string {
	var b strings.Builder
	b.WriteString(`<table:table-row>`)
	for _, v := range values {
		if v == "" {
			b.WriteString(`<table:table-cell/>`)
			continue
		}
		fmt.Fprintf(&b, `<table:table-cell office:value-type="string" calcext:value-type="string"><text:p>%s</text:p></table:table-cell>`, v)
	}
	b.WriteString(`<table:table-cell table:number-columns-repeated="16000"/></table:table-row>`)
	return b.String()
}

// odsPadding is how LibreOffice ends every sheet: one empty row repeated to
// the last row a spreadsheet has.
const odsPadding = `<table:table-row table:number-rows-repeated="1048550"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>`

const hiddenTableStyle = `<style:style style:name="ta2" style:family="table" style:master-page-name="Default"><style:table-properties table:display="false" style:writing-mode="lr-tb"/></style:style>`

func TestODS(t *testing.T) {
	head := odsRow("user_id", "displayname", "msisdns", "admin")
	tests := []struct {
		name   string
		styles string
		tables string
		opts   Options
		want   []string
	}{
		{
			name: "LibreOffice's cells: numbers raw, booleans, dates, spaces, paragraphs, comments",
			tables: odsTable("Staff", "ta1", head,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>alice</text:p><office:annotation><text:p>a comment</text:p></office:annotation></table:table-cell>`+
					`<table:table-cell office:value-type="string"><text:p>Alice <text:s text:c="2"/>Smith</text:p></table:table-cell>`+
					`<table:table-cell office:value-type="float" office:value="447470274584" calcext:value-type="float"><text:p>4.47E+11</text:p></table:table-cell>`+
					`<table:table-cell office:value-type="boolean" office:boolean-value="true"><text:p>TRUE</text:p></table:table-cell></table:table-row>`,
				`<table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>`,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>bob</text:p></table:table-cell>`+
					`<table:table-cell office:value-type="string"><text:p>Bob</text:p><text:p>Jones</text:p></table:table-cell>`+
					`<table:table-cell table:number-columns-repeated="2"/></table:table-row>`,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>carol</text:p></table:table-cell>`+
					`<table:table-cell office:value-type="date" office:date-value="2024-01-02"><text:p>02/01/24</text:p></table:table-cell></table:table-row>`,
				odsPadding),
			want: []string{
				"2 admin=true displayname=Alice   Smith msisdns=447470274584 user_id=alice",
				"5 displayname=Bob\nJones user_id=bob",
				"6 displayname=2024-01-02 user_id=carol",
			},
		},
		{
			name: "error cells and formulas without their value are refused; a computed value is read",
			tables: odsTable("Sheet1", "", head,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>alice</text:p></table:table-cell>`+
					`<table:table-cell table:formula="of:=1/0" office:value-type="float" office:value="0" calcext:value-type="error"><text:p>#DIV/0!</text:p></table:table-cell></table:table-row>`,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>bob</text:p></table:table-cell>`+
					`<table:table-cell table:formula="of:=UPPER([.A3])"/></table:table-row>`,
				`<table:table-row><table:table-cell office:value-type="string"><text:p>carol</text:p></table:table-cell>`+
					`<table:table-cell table:formula="of:=UPPER([.A4])" office:value-type="string" office:string-value="CAROL"><text:p>CAROL</text:p></table:table-cell>`+
					`<table:table-cell table:formula="of:=[.Z9]*2" office:value-type="float"><text:p/></table:table-cell></table:table-row>`,
				odsPadding),
			want: []string{
				"! m.ods:2:displayname: error cell #DIV/0! (a formula that failed in the spreadsheet): fix or empty the cell",
				"! m.ods:3:displayname: a formula saved without its value: open and save the sheet in a spreadsheet program",
				"! m.ods:4:msisdns: a formula saved without its value: open and save the sheet in a spreadsheet program",
			},
		},
		{
			name:   "the first visible sheet: a hidden one before it is passed over",
			styles: hiddenTableStyle,
			tables: odsTable("Old", "ta2", head, odsRow("zed", "Zed")) + odsTable("Staff", "ta1", head, odsRow("alice", "Alice"), odsPadding),
			want:   []string{"2 displayname=Alice user_id=alice"},
		},
		{
			name:   "--sheet names a hidden sheet, in any case",
			styles: hiddenTableStyle,
			tables: odsTable("Old", "ta2", head, odsRow("zed", "Zed")) + odsTable("Staff", "ta1", head, odsRow("alice", "Alice")),
			opts:   Options{Sheet: "old"},
			want:   []string{"2 displayname=Zed user_id=zed"},
		},
		{
			name:   "a repeated row with content is that many rows",
			tables: odsTable("S", "", head, strings.Replace(odsRow("same", "Same"), "<table:table-row>", `<table:table-row table:number-rows-repeated="3">`, 1), odsRow("next", "Next")),
			want:   []string{"2 displayname=Same user_id=same", "3 displayname=Same user_id=same", "4 displayname=Same user_id=same", "5 displayname=Next user_id=next"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := handODS(t, tt.styles, tt.tables)
			t.Chdir(filepath.Dir(path))
			r, err := Open("m.ods", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := events(t, r); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestODSSheetChoiceIsSaid(t *testing.T) {
	head := odsRow("user_id")
	path := handODS(t, hiddenTableStyle, odsTable("Old", "ta2", head)+odsTable("Staff", "", head, odsRow("alice")))
	if note, err := SheetNote(path, ""); err != nil || note != `read sheet "Staff" (sheet 2; sheet "Old" is hidden)` {
		t.Errorf("SheetNote: %q, %v", note, err)
	}
	if _, err := Open(path, Options{Sheet: "Nope"}); err == nil || !strings.Contains(err.Error(), `no sheet named "Nope"; the workbook has "Old", "Staff"`) {
		t.Errorf("an unknown sheet: %v", err)
	}
	only := handODS(t, hiddenTableStyle, odsTable("Old", "ta2", head))
	if _, err := Open(only, Options{}); err == nil || !strings.Contains(err.Error(), `every sheet is hidden ("Old")`) {
		t.Errorf("every sheet hidden: %v", err)
	}
}

// TestODSBoundsWhateverTheFileSays: repeat counts are bounded, cells past
// the last column and rows past the last row are refused, and a zip that
// says it inflates past the limit is refused before it is inflated.
func TestODSBoundsWhateverTheFileSays(t *testing.T) {
	head := odsRow("user_id", "displayname")
	tests := []struct {
		name   string
		tables string
		opts   Options
		want   string
	}{
		{"a repeated cell with content past the last column",
			odsTable("S", "", head, `<table:table-row><table:table-cell table:number-columns-repeated="20000" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>`),
			Options{}, "a cell past the last column a spreadsheet has (XFD)"},
		{"a repeat count past the rows of a sheet",
			odsTable("S", "", head, `<table:table-row table:number-rows-repeated="99999999999"><table:table-cell/></table:table-row>`),
			Options{}, `number-rows-repeated="99999999999": the file is damaged`},
		{"rows with content past the last row",
			odsTable("S", "", head, strings.Replace(odsRow("a", "b"), "<table:table-row>", `<table:table-row table:number-rows-repeated="1048576">`, 1)),
			Options{}, "is past the last row a spreadsheet has"},
		{"a zip that inflates past the limit",
			odsTable("S", "", head, odsRow("a", "b")),
			Options{MaxUnzip: 100}, "the workbook inflates to more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := handODS(t, "", tt.tables)
			_, err := readAll(t, path, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// LibreOffice's padding (a million empty rows of a thousand cells)
	// costs neither memory nor a row.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	path := handODS(t, "", odsTable("S", "", head, odsRow("alice", "Alice"), odsPadding))
	problems, err := readAll(t, path, Options{})
	runtime.ReadMemStats(&after)
	if err != nil || len(problems) != 0 {
		t.Fatalf("padding: %v %v", problems, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("reading a padded sheet allocated %d MB; want it bounded by its content", grew>>20)
	}
}

// TestLibreOfficeSavedODSReadsAsItsCSV has LibreOffice Calc itself save a
// CSV as .ods, and reads the same rows from both.
func TestLibreOfficeSavedODSReadsAsItsCSV(t *testing.T) {
	lo := ""
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			lo = p
		}
	}
	if lo == "" {
		if os.Getenv("SYNBATCH_REQUIRE_LIBREOFFICE") == "1" {
			t.Fatal("LibreOffice is required (SYNBATCH_REQUIRE_LIBREOFFICE=1)")
		}
		t.Skip("no LibreOffice (apt-get install libreoffice-calc-nogui)")
	}
	dir := t.TempDir()
	csvText := "user_id,displayname,msisdns,admin,note\nalice,Alice  Smith,447470274584,TRUE,\nbob,\"Bob, Jr.\",+44 7700 900123,FALSE,x\n\ncarol,Carol,,,\n"
	csvPath := filepath.Join(dir, "staff.csv")
	if err := os.WriteFile(csvPath, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	conv := exec.Command(lo, "-env:UserInstallation=file://"+filepath.Join(dir, "lo-profile"), "--headless",
		"--convert-to", "ods", "--infilter=CSV:44,34,76,1", "--outdir", filepath.Join(dir, "out"), csvPath)
	conv.Env = append(os.Environ(), "HOME="+dir)
	if out, err := conv.CombinedOutput(); err != nil {
		t.Fatalf("LibreOffice: %v\n%s", err, out)
	}
	read := func(path string) []string {
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var rows []string
		for {
			row, err := r.Next()
			if errors.Is(err, io.EOF) {
				return rows
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			rows = append(rows, renderRow(row))
		}
	}
	fromCSV, fromODS := read(csvPath), read(filepath.Join(dir, "out", "staff.ods"))
	if len(fromCSV) != 3 {
		t.Fatalf("the CSV reads as %q; want 3 rows", fromCSV)
	}
	// LibreOffice types TRUE/FALSE as booleans, which read as true/false.
	want := strings.NewReplacer("admin=TRUE", "admin=true", "admin=FALSE", "admin=false").Replace(strings.Join(fromCSV, "|"))
	if got := strings.Join(fromODS, "|"); got != want {
		t.Errorf("the .ods LibreOffice saved reads\n%q\nits CSV\n%q", got, want)
	}
}

// TestODSWriterRoundTripsAndLibreOfficeReadsIt: what the ODS writer writes
// reads back exactly (runs of spaces, tabs, lines, markup characters, text
// that looks like a formula), integers as numbers and times as dates; and
// LibreOffice Calc opens the file and shows the same cells (converted back
// to CSV by LibreOffice itself, when it is installed).
func TestODSWriterRoundTripsAndLibreOfficeReadsIt(t *testing.T) {
	values := []string{`=HYPERLINK("http://x")`, "Alice  Smith", "a <b> & \"c\"", "two\nlines", "tab\there", "'quoted", " Alice ", "Jürgen Müller-Løvås", "x   ", "plain"}
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ods")
	w, err := Create(path, []string{"user_id", "displayname", "creation_ts", "last_seen"})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	for i, v := range values {
		if err := w.Write([]any{"u" + strconv.Itoa(i), v, int64(1700000000000 + i), when}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write([]any{"empty", nil, nil, nil}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if k, err := sniff(path); err != nil || k != kindODS {
		t.Fatalf("the file sniffs as %v (%v), want an ODS", k, err)
	}
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range values {
		row, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := row.Fields["displayname"].Value; got != want {
			t.Errorf("row %d: read back %q, want %q", i+2, got, want)
		}
		if got := row.Fields["creation_ts"].Value; got != strconv.Itoa(1700000000000+i) {
			t.Errorf("row %d: creation_ts %q", i+2, got)
		}
		if got := row.Fields["last_seen"].Value; got != "2024-03-04T05:06:07" {
			t.Errorf("row %d: last_seen %q, want the date", i+2, got)
		}
	}
	if row, err := r.Next(); err != nil || len(row.Fields) != 1 {
		t.Errorf("the row of empty cells: %v %v", row, err)
	}

	lo := ""
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			lo = p
		}
	}
	if lo == "" {
		t.Skip("no LibreOffice to open the file (apt-get install libreoffice-calc-nogui)")
	}
	conv := exec.Command(lo, "-env:UserInstallation=file://"+filepath.Join(dir, "lo-profile"), "--headless",
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", filepath.Join(dir, "csv"), path)
	conv.Env = append(os.Environ(), "HOME="+dir)
	if out, err := conv.CombinedOutput(); err != nil {
		t.Fatalf("LibreOffice: %v\n%s", err, out)
	}
	back, err := Open(filepath.Join(dir, "csv", "out.csv"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	for i, want := range values {
		row, err := back.Next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(want, "\t") {
			// LibreOffice keeps a text:tab in the cell, but its CSV
			// export drops it; our reader gives it back (above).
			want = strings.ReplaceAll(want, "\t", "")
		}
		if got := Unescape(row.Fields["displayname"].Value); got != want && "'"+got != Escape(want) {
			t.Errorf("LibreOffice shows row %d as %q, want %q", i+2, got, want)
		}
		if got := row.Fields["last_seen"].Value; got != "2024-03-04 05:06:07" {
			t.Errorf("LibreOffice shows the date of row %d as %q", i+2, got)
		}
	}
}
