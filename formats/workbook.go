package formats

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// DefaultMaxUnzip is what a workbook may inflate to, all parts together,
// unless Options.MaxUnzip says otherwise. A sheet of 1,048,576 rows (the
// most a spreadsheet has) and ten columns is about half a gigabyte of XML,
// so 1 GiB leaves room for any real manifest. Sheets are streamed, so the
// limit bounds time and never memory; a zip bomb (a small file that
// inflates to gigabytes) is refused before anything is inflated.
const DefaultMaxUnzip = 1 << 30

// Bounds on what the XLSX reader holds in memory, whatever the file says.
const (
	// maxHeldPart bounds the parts read whole: the shared-strings table
	// (every distinct text of the workbook; a million rows of unique ids,
	// emails and names need about a third of this) and the small
	// bookkeeping parts.
	maxHeldPart = 256 << 20
	// maxXMLRun bounds text or a tag without markup, which the XML decoder
	// holds whole: the longest cell (MaxCell) with every character escaped.
	maxXMLRun = 8 * MaxCell
	// maxSheetRows and maxSheetColumns are a spreadsheet's own limits.
	maxSheetRows    = 1 << 20
	maxSheetColumns = 1 << 14
	// maxRowText bounds the text of one row, as maxJSONLLine bounds a line.
	maxRowText = maxJSONLLine
	// maxEntries bounds the sheets of a workbook and the relationships of a
	// part: real workbooks have a handful.
	maxEntries = 10000
)

// workbook is an opened XLSX file: its parts by name and its sheets.
type workbook struct {
	name   string // the file as given, for messages
	parts  map[string]*zip.File
	sheets []sheetEntry
	sst    string // part name of the shared-strings table, "" if none
	styles string // part name of the styles, "" if none
	// date1904 is set for a workbook that counts dates from 1904 (old
	// Mac Excel, and Numbers).
	date1904 bool
	// recalc is set for a workbook that asks to be recomputed when opened
	// (calcPr fullCalcOnLoad): its writer did not compute its formulas.
	recalc bool
}

// sheetEntry is one sheet as the workbook lists it.
type sheetEntry struct {
	name   string
	hidden bool   // state="hidden" or "veryHidden"
	part   string // zip part of the sheet's XML
}

// openWorkbook checks what the zip says its parts inflate to against the
// limits, then reads the list of sheets. Go's zip reader fails a part that
// inflates to more than its header says, so the check holds.
func openWorkbook(zr *zip.Reader, name string, maxUnzip int64) (*workbook, error) {
	if err := checkInflate(zr, maxUnzip); err != nil {
		return nil, err
	}
	wb := &workbook{name: name, parts: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		// Part names are case-insensitive (ECMA-376 part 2); some writers
		// use backslashes.
		wb.parts[strings.ToLower(strings.ReplaceAll(f.Name, `\`, "/"))] = f
	}
	book := "xl/workbook.xml"
	rels, err := wb.relationships("_rels/.rels")
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		if strings.HasSuffix(r.typ, "/officeDocument") {
			book = r.target
		}
	}
	if err := wb.readSheets(book); err != nil {
		return nil, err
	}
	return wb, nil
}

// checkInflate refuses a zip whose parts say they inflate to more than
// maxUnzip (0: DefaultMaxUnzip), all together, before anything is inflated.
// Go's zip reader fails a part that inflates to more than its header says,
// so the check holds.
func checkInflate(zr *zip.Reader, maxUnzip int64) error {
	if maxUnzip <= 0 {
		maxUnzip = DefaultMaxUnzip
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > uint64(maxUnzip) || f.UncompressedSize64 > uint64(maxUnzip) {
			return fmt.Errorf("the workbook inflates to more than %s (a zip bomb, or a workbook far larger than any manifest): refusing it; split it, or save it as CSV", byteSize64(maxUnzip))
		}
	}
	return nil
}

// byteSize64 renders a limit in whole MiB or GiB where it is one.
func byteSize64(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return byteSize(int(n))
}

// relationship is one entry of a .rels part, its target resolved to a part name.
type relationship struct{ id, typ, target string }

// relationships reads the .rels part at name; a missing part has none.
func (wb *workbook) relationships(name string) ([]relationship, error) {
	dir := path.Dir(path.Dir(name)) // "xl/_rels/workbook.xml.rels" is about "xl/"
	var out []relationship
	err := wb.decode(name, false, func(d *xml.Decoder, se xml.StartElement) error {
		if se.Name.Local != "Relationship" {
			return nil
		}
		var r relationship
		external := false
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "Id":
				r.id = a.Value
			case "Type":
				r.typ = a.Value
			case "Target":
				r.target = a.Value
			case "TargetMode":
				external = strings.EqualFold(a.Value, "External")
			}
		}
		if external {
			return nil
		}
		if strings.HasPrefix(r.target, "/") {
			r.target = strings.TrimPrefix(path.Clean(r.target), "/")
		} else {
			r.target = path.Join(dir, r.target)
		}
		r.target = strings.ToLower(r.target)
		if len(out) == maxEntries {
			return fmt.Errorf("more than %d relationships", maxEntries)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// readSheets reads the list of sheets from the workbook part and finds
// each sheet's XML and the shared-strings table.
func (wb *workbook) readSheets(book string) error {
	book = strings.ToLower(book)
	rels, err := wb.relationships(path.Join(path.Dir(book), "_rels", path.Base(book)+".rels"))
	if err != nil {
		return err
	}
	byID := make(map[string]string, len(rels))
	for _, r := range rels {
		byID[r.id] = r.target
		if strings.HasSuffix(r.typ, "/sharedStrings") {
			wb.sst = r.target
		}
		if strings.HasSuffix(r.typ, "/styles") {
			wb.styles = r.target
		}
	}
	if wb.styles == "" && wb.parts["xl/styles.xml"] != nil {
		wb.styles = "xl/styles.xml"
	}
	if wb.sst == "" && wb.parts["xl/sharedstrings.xml"] != nil {
		wb.sst = "xl/sharedstrings.xml"
	}
	found := false
	err = wb.decode(book, true, func(d *xml.Decoder, se xml.StartElement) error {
		found = true
		if se.Name.Local == "workbookPr" {
			v, _ := attr(se, "date1904")
			wb.date1904 = v == "1" || v == "true"
		}
		if se.Name.Local == "calcPr" {
			v, _ := attr(se, "fullCalcOnLoad")
			wb.recalc = v == "1" || v == "true"
		}
		if se.Name.Local != "sheet" {
			return nil
		}
		var s sheetEntry
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "name":
				s.name = a.Value
			case "state":
				s.hidden = a.Value == "hidden" || a.Value == "veryHidden"
			case "id": // r:id, in whichever namespace the file uses
				s.part = byID[a.Value]
			}
		}
		if len(wb.sheets) == maxEntries {
			return fmt.Errorf("more than %d sheets", maxEntries)
		}
		wb.sheets = append(wb.sheets, s)
		return nil
	})
	if err != nil {
		return err
	}
	if !found || len(wb.sheets) == 0 {
		return errors.New("the workbook has no sheets")
	}
	return nil
}

// open opens a part for streaming, its XML guarded against runs of text
// that the decoder would hold whole.
func (wb *workbook) open(name string) (io.ReadCloser, error) {
	f := wb.parts[name]
	if f == nil {
		return nil, fmt.Errorf("the workbook has no part %s: the file is damaged", name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &runGuard{r: rc, c: rc, part: name}, nil
}

// decode calls fn for each start element of the part at name. A missing
// part is an error only when required; a part the reader holds in memory
// must fit maxHeldPart.
func (wb *workbook) decode(name string, required bool, fn func(*xml.Decoder, xml.StartElement) error) error {
	f := wb.parts[name]
	if f == nil {
		if required {
			return fmt.Errorf("the workbook has no part %s: the file is damaged", name)
		}
		return nil
	}
	rc, err := wb.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	d := xml.NewDecoder(rc)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if err := fn(d, se); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
}

// sharedStrings is the workbook's table of distinct texts, in one buffer
// with the end of each entry: a few bytes per entry beyond the text itself.
type sharedStrings struct {
	text []byte
	ends []uint32
}

func (s *sharedStrings) len() int { return len(s.ends) }

func (s *sharedStrings) get(i int) string {
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return string(s.text[start:s.ends[i]])
}

// readSharedStrings reads the shared-strings table, if the workbook has one.
// An entry's text is its <t> element, or the <t> of each of its rich-text
// runs; phonetic hints (<rPh>) are not part of it.
func (wb *workbook) readSharedStrings() (*sharedStrings, error) {
	s := &sharedStrings{}
	if wb.sst == "" {
		return s, nil
	}
	if f := wb.parts[wb.sst]; f != nil && f.UncompressedSize64 > maxHeldPart {
		return nil, fmt.Errorf("the shared-strings table inflates to %d bytes, more than the %s the reader holds in memory: split the workbook, or save it as CSV", f.UncompressedSize64, byteSize(maxHeldPart))
	}
	var entry []byte
	err := wb.decode(wb.sst, false, func(d *xml.Decoder, se xml.StartElement) error {
		if se.Name.Local != "si" {
			return nil
		}
		entry = entry[:0]
		if err := richText(d, &entry); err != nil {
			return err
		}
		s.text = append(s.text, unescapeBSTR(entry)...)
		if len(s.text) > maxHeldPart {
			return fmt.Errorf("more than %s of text", byteSize(maxHeldPart))
		}
		s.ends = append(s.ends, uint32(len(s.text)))
		return nil
	})
	return s, err
}

// richText appends the text of the element just started (<si> or <is>) to
// buf and consumes its end: its own <t>, or the <t> of its <r> runs.
func richText(d *xml.Decoder, buf *[]byte) error {
	depth, inT, skip := 1, false, 0
	for depth > 0 {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case skip > 0:
				skip++
			case t.Name.Local == "rPh" || t.Name.Local == "phoneticPr":
				skip = 1
			case t.Name.Local == "t":
				inT = true
			}
		case xml.EndElement:
			depth--
			switch {
			case skip > 0:
				skip--
			case t.Name.Local == "t":
				inT = false
			}
		case xml.CharData:
			if inT && skip == 0 {
				if len(*buf)+len(t) > maxXMLRun {
					return fmt.Errorf("a text of more than %s", byteSize(maxXMLRun))
				}
				*buf = append(*buf, t...)
			}
		}
	}
	return nil
}

// unescapeBSTR decodes the _xHHHH_ escapes spreadsheet programs use for
// characters XML cannot hold (ECMA-376 part 1, 22.9.2.19): _x0001_ is
// U+0001, and _x005F_ escapes the underscore of a literal "_x0001_".
func unescapeBSTR(b []byte) []byte {
	s := string(b)
	if !strings.Contains(s, "_x") {
		return b
	}
	var out strings.Builder
	for {
		i := strings.Index(s, "_x")
		if i < 0 || len(s) < i+7 || s[i+6] != '_' {
			out.WriteString(s)
			break
		}
		n, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
		if err != nil {
			out.WriteString(s[:i+2])
			s = s[i+2:]
			continue
		}
		out.WriteString(s[:i])
		out.WriteRune(rune(n))
		s = s[i+7:]
	}
	return []byte(out.String())
}

// runGuard fails a part whose XML has a run of more than maxXMLRun bytes
// between two angle brackets: no cell is that long, and the XML decoder
// would hold the whole run in memory.
type runGuard struct {
	r    io.Reader
	c    io.Closer
	part string
	run  int
}

var errLongRun = fmt.Errorf("more than %s of text without markup, longer than any cell may be: the file is damaged, or a zip bomb", byteSize(maxXMLRun))

func (g *runGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for _, b := range p[:n] {
		if b == '<' || b == '>' {
			g.run = 0
			continue
		}
		g.run++
		if g.run > maxXMLRun {
			return 0, fmt.Errorf("%s: %w", g.part, errLongRun)
		}
	}
	return n, err
}

func (g *runGuard) Close() error { return g.c.Close() }
