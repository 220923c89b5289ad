package formats

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// handSheet is one worksheet of a handcrafted workbook: what a spreadsheet
// program may write but excelize's writer never does (hidden sheets, error
// cells, broken shared-string indexes).
type handSheet struct {
	name  string
	state string // "", "hidden" or "veryHidden"
	data  string // the inner XML of <sheetData>
}

// handXLSX writes a workbook from its XML parts and returns its path;
// bookTail is XML for the workbook part after its <sheets>, such as the
// <calcPr> a writer sets.
func handXLSX(t testing.TB, sheets []handSheet, sst []string, bookTail ...string) string {
	t.Helper()
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	var types, book, rels strings.Builder
	types.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>`)
	book.WriteString(`<?xml version="1.0" encoding="UTF-8"?><workbook ` + ns + `><sheets>`)
	rels.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`)
	parts := map[string]string{}
	for i, s := range sheets {
		n := i + 1
		fmt.Fprintf(&types, `<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`, n)
		state := ""
		if s.state != "" {
			state = fmt.Sprintf(` state="%s"`, s.state)
		}
		fmt.Fprintf(&book, `<sheet name="%s" sheetId="%d"%s r:id="rId%d"/>`, s.name, n, state, n)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, n, n)
		parts[fmt.Sprintf("xl/worksheets/sheet%d.xml", n)] = `<?xml version="1.0" encoding="UTF-8"?><worksheet ` + ns + `><sheetData>` + s.data + `</sheetData></worksheet>`
	}
	if sst != nil {
		types.WriteString(`<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>`)
		rels.WriteString(`<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`)
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">`, len(sst), len(sst))
		for _, s := range sst {
			fmt.Fprintf(&b, `<si><t xml:space="preserve">%s</t></si>`, s)
		}
		b.WriteString(`</sst>`)
		parts["xl/sharedStrings.xml"] = b.String()
	}
	types.WriteString(`</Types>`)
	book.WriteString(`</sheets>` + strings.Join(bookTail, "") + `</workbook>`)
	rels.WriteString(`</Relationships>`)
	parts["[Content_Types].xml"] = types.String()
	parts["_rels/.rels"] = `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`
	parts["xl/workbook.xml"] = book.String()
	parts["xl/_rels/workbook.xml.rels"] = rels.String()

	path := filepath.Join(t.TempDir(), "m.xlsx")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range parts {
			if !yield(k) {
				return
			}
		}
	}) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(parts[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// inlineRow is a <row> of inline-string cells from column A on.
func inlineRow(num int, values ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<row r="%d">`, num)
	for i, v := range values {
		fmt.Fprintf(&b, `<c r="%s%d" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>`, columnLetter(i), num, v)
	}
	b.WriteString(`</row>`)
	return b.String()
}

// writeBomb writes a one-sheet workbook whose sheet XML inflates to about
// size bytes: a header row, then filler repeated, inside the text of cell A2
// when inCell is set. The deflate stream is one
// compressed megabyte of filler repeated, so building a 3 GiB bomb costs no
// more than building a small one.
func writeBomb(t testing.TB, path string, size int64, filler string, inCell bool) {
	t.Helper()
	const chunk = 1 << 20
	block := func(data []byte) []byte {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		fw.Write(data)
		fw.Flush() // byte-aligned and self-contained: blocks can be concatenated
		return b.Bytes()
	}
	head := []byte(`<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		inlineRow(1, "user_id", "displayname"))
	tail := []byte(`</sheetData></worksheet>`)
	if inCell {
		head = append(head, `<row r="2"><c r="A2" t="inlineStr"><is><t>`...)
		tail = append([]byte(`</t></is></c></row>`), tail...)
	}
	fill := bytes.Repeat([]byte(filler), chunk/len(filler)) // whole fillers only
	n := size / chunk
	var end bytes.Buffer
	fw, _ := flate.NewWriter(&end, flate.BestCompression)
	fw.Write(tail)
	fw.Close()

	crc := crc32.Update(0, crc32.IEEETable, head)
	for range n {
		crc = crc32.Update(crc, crc32.IEEETable, fill)
	}
	crc = crc32.Update(crc, crc32.IEEETable, tail)
	headZ, fillZ := block(head), block(fill)

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	small := map[string]string{
		"[Content_Types].xml":        `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`,
		"_rels/.rels":                `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml":            `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
	}
	for _, name := range []string{"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(small[name]))
	}
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "xl/worksheets/sheet1.xml", Method: zip.Deflate, CRC32: crc,
		CompressedSize64:   uint64(len(headZ)) + uint64(n)*uint64(len(fillZ)) + uint64(end.Len()),
		UncompressedSize64: uint64(len(head)) + uint64(n)*uint64(len(fill)) + uint64(len(tail)),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(headZ)
	for range n {
		if _, err := w.Write(fillZ); err != nil {
			t.Fatal(err)
		}
	}
	w.Write(end.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// readAll opens path and drains it, returning the problems and the fatal
// error (or the Open error) as text.
func readAll(t *testing.T, path string, opts Options) (problems []string, fatal error) {
	t.Helper()
	r, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	for range 1 << 20 {
		_, err := r.Next()
		var p *Problem
		switch {
		case err == nil:
		case errors.As(err, &p):
			problems = append(problems, p.Error())
		case errors.Is(err, io.EOF):
			return problems, nil
		default:
			return problems, err
		}
	}
	t.Fatal("the reader never ended")
	return nil, nil
}

func TestXLSXZipBombIsRefusedInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 3 GiB zip bomb")
	}
	tests := []struct {
		name   string
		size   int64
		filler string
		inCell bool
		want   string
	}{
		// Under the total limit, but no cell or stretch of XML text is
		// that long: refused once a run passes what a cell may hold.
		{"512 MiB of blank text in the sheet", 512 << 20, " \n", false, "without markup"},
		{"512 MiB in one cell's text", 512 << 20, "A", true, "without markup"},
		// Rows are cheap to inflate, but a sheet has at most 1,048,576.
		{"512 MiB of empty rows", 512 << 20, "<row/>", false, "past the last row"},
		// Over the total limit: refused before anything is inflated.
		{"3 GiB sheet", 3 << 30, " ", false, "inflates to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bomb.xlsx")
			writeBomb(t, path, tt.size, tt.filler, tt.inCell)
			fi, _ := os.Stat(path)
			t.Logf("%s: %d bytes on disk", tt.name, fi.Size())
			// The read runs in a child process, whose peak RSS the kernel
			// reports: far below the 200 MB a validate run may take.
			cmd := exec.Command(os.Args[0], "-test.run=^TestReadBombChild$", "-test.v")
			cmd.Env = append(os.Environ(), "SYNBATCH_READ_BOMB="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "bomb.xlsx") {
				t.Errorf("child output:\n%s\nwant a refusal naming the file and %q", out, tt.want)
			}
			rss, ok := peakRSS(cmd.ProcessState)
			if !ok {
				t.Skip("this system does not report a child's peak RSS")
			}
			t.Logf("peak RSS %d MiB", rss>>20)
			if rss > 100<<20 {
				t.Errorf("peak RSS %d MiB reading the bomb, want under 100 MiB", rss>>20)
			}
		})
	}
}

// TestReadBombChild reads the file at $SYNBATCH_READ_BOMB and prints what
// ended the read, for TestXLSXZipBombIsRefusedInBoundedMemory.
func TestReadBombChild(t *testing.T) {
	path := os.Getenv("SYNBATCH_READ_BOMB")
	if path == "" {
		t.Skip("run by TestXLSXZipBombIsRefusedInBoundedMemory")
	}
	_, err := readAll(t, path, Options{})
	fmt.Printf("refused: %v\n", err)
}

// TestWriteBombFiles writes the two bombs of TestXLSXZipBombIsRefusedInBoundedMemory
// to $SYNBATCH_WRITE_BOMBS, to measure a built binary on them by hand:
//
//	SYNBATCH_WRITE_BOMBS=/tmp/bombs go test ./formats -run TestWriteBombFiles
//	/usr/bin/time -v synbatch validate /tmp/bombs/bomb-512m.xlsx
func TestWriteBombFiles(t *testing.T) {
	dir := os.Getenv("SYNBATCH_WRITE_BOMBS")
	if dir == "" {
		t.Skip("set SYNBATCH_WRITE_BOMBS to a directory to write the bomb files")
	}
	writeBomb(t, filepath.Join(dir, "bomb-512m.xlsx"), 512<<20, " \n", false)
	writeBomb(t, filepath.Join(dir, "bomb-512m-cell.xlsx"), 512<<20, "A", true)
	writeBomb(t, filepath.Join(dir, "bomb-512m-rows.xlsx"), 512<<20, "<row/>", false)
	writeBomb(t, filepath.Join(dir, "bomb-3g.xlsx"), 3<<30, " ", false)
}

func TestXLSXHiddenFirstSheetIsNotRead(t *testing.T) {
	staff := inlineRow(1, "user_id") + inlineRow(2, "alice")
	old := inlineRow(1, "user_id") + inlineRow(2, "mallory")
	tests := []struct {
		name      string
		sheets    []handSheet
		sheet     string
		want      []string
		wantSheet string
		wantNote  string
		wantErr   string
	}{
		{
			name:      "hidden first sheet is skipped",
			sheets:    []handSheet{{"Old", "hidden", old}, {"Staff", "", staff}},
			want:      []string{"2 user_id=alice"},
			wantSheet: "Staff",
			wantNote:  `read sheet "Staff" (sheet 2; sheet "Old" is hidden)`,
		},
		{
			name:      "very hidden first sheet is skipped",
			sheets:    []handSheet{{"Old", "veryHidden", old}, {"Staff", "", staff}},
			want:      []string{"2 user_id=alice"},
			wantSheet: "Staff",
			wantNote:  `read sheet "Staff" (sheet 2; sheet "Old" is hidden)`,
		},
		{
			name:      "a hidden sheet named by --sheet is read",
			sheets:    []handSheet{{"Old", "hidden", old}, {"Staff", "", staff}},
			sheet:     "old",
			want:      []string{"2 user_id=mallory"},
			wantSheet: "Old",
			wantNote:  `read sheet "Old" (sheet 1, hidden)`,
		},
		{
			name:      "a visible first sheet says so",
			sheets:    []handSheet{{"Staff", "", staff}, {"Old", "hidden", old}},
			want:      []string{"2 user_id=alice"},
			wantSheet: "Staff",
			wantNote:  `read sheet "Staff" (sheet 1)`,
		},
		{
			name:    "every sheet hidden is refused",
			sheets:  []handSheet{{"Old", "hidden", old}, {"Older", "veryHidden", old}},
			wantErr: `m.xlsx: every sheet is hidden ("Old", "Older"): name the one to read with --sheet`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := handXLSX(t, tt.sheets, nil)
			t.Chdir(filepath.Dir(path))
			r, err := Open("m.xlsx", Options{Sheet: tt.sheet})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := events(t, r); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := SheetOf(r); got != tt.wantSheet {
				t.Errorf("SheetOf = %q, want %q", got, tt.wantSheet)
			}
			note, err := SheetNote("m.xlsx", tt.sheet)
			if err != nil || note != tt.wantNote {
				t.Errorf("SheetNote = %q, %v; want %q", note, err, tt.wantNote)
			}
		})
	}
}

func TestXLSXCellsThatLieAreRefused(t *testing.T) {
	head := inlineRow(1, "user_id", "displayname")
	tests := []struct {
		name string
		data string
		sst  []string
		tail string // workbook XML after <sheets>
		want []string
	}{
		{
			name: "error cells",
			data: head + `<row r="2"><c r="A2" t="inlineStr"><is><t>alice</t></is></c><c r="B2" t="e"><f>Sheet9!A1</f><v>#REF!</v></c></row>` +
				`<row r="3"><c r="A3" t="inlineStr"><is><t>bob</t></is></c><c r="B3" t="e"><v>#N/A</v></c></row>` +
				inlineRow(4, "carol", "Carol"),
			want: []string{
				"! m.xlsx:2:displayname: error cell #REF! (a formula that failed in the spreadsheet): fix or empty the cell",
				"! m.xlsx:3:displayname: error cell #N/A (a formula that failed in the spreadsheet): fix or empty the cell",
				"4 displayname=Carol user_id=carol",
			},
		},
		{
			// What openpyxl writes for a formula (its cell writer, read
			// through the search tool: no t attribute, <f> then an empty
			// <v>), and a formula without <v> at all. A formula whose
			// computed text is empty is saved t="str" and stays empty.
			name: "formulas saved without their value",
			data: head + `<row r="2"><c r="A2" t="inlineStr"><is><t>alice</t></is></c><c r="B2"><f>UPPER(A2)</f><v></v></c></row>` +
				`<row r="3"><c r="A3" t="inlineStr"><is><t>bob</t></is></c><c r="B3"><f>UPPER(A3)</f></c></row>` +
				`<row r="4"><c r="A4" t="inlineStr"><is><t>carol</t></is></c><c r="B4" t="str"><f>""</f><v></v></c></row>` +
				`<row r="5"><c r="A5" t="inlineStr"><is><t>dave</t></is></c><c r="B5" t="str"><f>UPPER(A5)</f><v>DAVE</v></c></row>` +
				`<row r="6"><c r="A6"><f>"er"&amp;"in"</f><v/></c><c r="B6" t="inlineStr"><is><t>Erin</t></is></c></row>`,
			want: []string{
				"! m.xlsx:2:displayname: a formula saved without its value: open and save the sheet in a spreadsheet program",
				"! m.xlsx:3:displayname: a formula saved without its value: open and save the sheet in a spreadsheet program",
				"4 user_id=carol",
				"5 displayname=DAVE user_id=dave",
				"! m.xlsx:6:user_id: a formula saved without its value: open and save the sheet in a spreadsheet program",
			},
		},
		{
			// XlsxWriter (pandas' other engine) saves 0 for a formula and
			// asks for a recalculation on load.
			name: "formula placeholders of a workbook to be recalculated",
			tail: `<calcPr calcId="124519" fullCalcOnLoad="1"/>`,
			data: head + `<row r="2"><c r="A2" t="inlineStr"><is><t>alice</t></is></c><c r="B2"><f>A2*2</f><v>0</v></c></row>` +
				inlineRow(3, "bob", "Bob"),
			want: []string{
				"! m.xlsx:2:displayname: a formula saved without its value: open and save the sheet in a spreadsheet program (the program that wrote it saved a placeholder and asked for a recalculation)",
				"3 displayname=Bob user_id=bob",
			},
		},
		{
			name: "shared string index out of range",
			sst:  []string{"user_id", "displayname", "alice"},
			data: `<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>` +
				`<row r="2"><c r="A2" t="s"><v>7</v></c></row>` +
				`<row r="3"><c r="A3" t="s"><v>2</v></c></row>`,
			want: []string{
				"! m.xlsx:2:user_id: the cell points at shared string 7, but the workbook has 3: the file is damaged (save it again from the spreadsheet)",
				"3 user_id=alice",
			},
		},
		{
			name: "control characters",
			data: head + inlineRow(2, "alice", "Al_x0001_ice") + inlineRow(3, "bob", "Bob_x0000_") + inlineRow(4, "carol", "Carol\tSmith"),
			want: []string{
				"! m.xlsx:2:displayname: control character U+0001 at character 3: remove it",
				"! m.xlsx:3:displayname: control character U+0000 (NUL) at character 4: remove it",
				"4 displayname=Carol\tSmith user_id=carol",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := handXLSX(t, []handSheet{{"Sheet1", "", tt.data}}, tt.sst, tt.tail)
			t.Chdir(filepath.Dir(path))
			r, err := Open("m.xlsx", Options{})
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

func TestControlCharactersAndHugeCellsAreRefusedInEveryFormat(t *testing.T) {
	huge := strings.Repeat("x", MaxCell+1)
	tests := []struct {
		file, content string
		want          []string
	}{
		{"m.csv", "user_id,displayname\nalice,Al\x00ice\nbob,\"Bob\nSmith\"\ncarol,Carol\x7f\ndave," + huge + "\n", []string{
			"! m.csv:2:displayname: control character U+0000 (NUL) at character 3: remove it",
			"3 displayname=Bob\nSmith user_id=bob",
			"! m.csv:4:displayname: control character U+007F (DEL) at character 6: remove it",
			"! m.csv:5:displayname: the cell holds 1048577 bytes, more than the 1 MiB a cell may hold",
		}},
		{"m.tsv", "user_id\tdisplayname\nalice\tA\x1bB\nbob\tBob\tx\n", []string{
			"! m.tsv:2:displayname: control character U+001B (ESC) at character 2: remove it",
			"! m.tsv:3: row has 3 cells, header has 2",
		}},
		{"m.jsonl", `{"user_id": "alice", "displayname": "Al\u0000ice"}` + "\n" +
			`{"user_id": "bob", "emails": ["b@x.org", "\u0007@x.org"]}` + "\n" +
			`{"user_id": "carol", "displayname": "Carol\tSmith"}` + "\n" +
			`{"user_id": "dave", "displayname": "` + huge + `"}` + "\n", []string{
			"! m.jsonl:1:displayname: control character U+0000 (NUL) at character 3: remove it",
			"! m.jsonl:2:emails: entry 2: control character U+0007 at character 1: remove it",
			"3 displayname=Carol\tSmith user_id=carol",
			"! m.jsonl:4:displayname: the cell holds 1048577 bytes, more than the 1 MiB a cell may hold",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if err := os.WriteFile(tt.file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(tt.file, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := events(t, r)
			for i := range got {
				if len(got[i]) > 1000 {
					got[i] = Clip(got[i])
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestQuoteShortensLongValues(t *testing.T) {
	long := strings.Repeat("é", 100)
	tests := []struct{ in, want string }{
		{"alice", `"alice"`},
		{"a\tb", `"a\tb"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"…(65 bytes)`},
		{long, `"` + strings.Repeat("é", 64) + `"…(200 bytes)`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%.20q…) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
