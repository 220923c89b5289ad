package formats

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// xlsxReader streams one sheet of an XLSX workbook straight from the zip:
// nothing is unzipped to disk, and what it holds in memory is bounded by
// the limits in workbook.go whatever the file declares.
type xlsxReader struct {
	grid
	wb     *workbook
	sheet  sheetEntry
	index  int // 1-based position of the sheet in the workbook
	sst    *sharedStrings
	styles *styles
	dec    *xml.Decoder
}

// grid turns the rows a workbook reader decodes (XLSX or ODS) into header,
// rows and problems, the same way for both.
type grid struct {
	name      string // the file, for messages
	sheetName string
	hdr       *header
	num       int // sheet row number of the last row read
	q         queue
	// nextRow decodes the next row of the sheet, setting num, or returns
	// io.EOF.
	nextRow func() (xlsxRow, error)
	part    io.ReadCloser // the sheet's XML
	closer  io.Closer     // the zip file; nil when reading from memory
}

// openXLSX opens the workbook at path and reads the header of sheet ("" for
// the first visible sheet).
func openXLSX(path, sheet string, maxUnzip int64) (Reader, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", path, err)
	}
	return closeOnError(zr, func() (*xlsxReader, error) { return newXLSXReader(&zr.Reader, path, sheet, maxUnzip) })
}

// closeOnError returns what open returns, the zip it reads closed with the
// reader, or at once when open fails.
func closeOnError[R interface {
	Reader
	setCloser(io.Closer)
}](zr *zip.ReadCloser, open func() (R, error)) (Reader, error) {
	r, err := open()
	if err != nil {
		_ = zr.Close()
		return nil, err
	}
	r.setCloser(zr)
	return r, nil
}

func (r *grid) setCloser(c io.Closer) { r.closer = c }

// newXLSXReader selects the sheet of zr and reads its header.
func newXLSXReader(zr *zip.Reader, name, sheet string, maxUnzip int64) (*xlsxReader, error) {
	wb, err := openWorkbook(zr, name, maxUnzip)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", name, err)
	}
	i, err := wb.find(sheet)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	r := &xlsxReader{grid: grid{name: name, sheetName: wb.sheets[i].name}, wb: wb, sheet: wb.sheets[i], index: i + 1}
	r.grid.nextRow = r.nextRow
	if r.sst, err = wb.readSharedStrings(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	if r.styles, err = wb.readStyles(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	if r.part, err = wb.open(r.sheet.part); err != nil {
		return nil, fmt.Errorf("read manifest %s: sheet %q: %w", name, r.sheet.name, err)
	}
	r.dec = xml.NewDecoder(r.part)
	r.readHeader()
	return r, nil
}

// find returns the index of the sheet to read: the first visible sheet when
// want is "", otherwise the sheet matching want, exactly or ignoring case as
// Excel does. A hidden sheet is read only when named: a sheet someone hid is
// rarely the one meant, and its rows would be applied unseen.
func (wb *workbook) find(want string) (int, error) {
	if want == "" {
		for i, s := range wb.sheets {
			if !s.hidden {
				return i, nil
			}
		}
		return 0, fmt.Errorf("every sheet is hidden (%s): name the one to read with --sheet", wb.sheetList())
	}
	for i, s := range wb.sheets {
		if s.name == want {
			return i, nil
		}
	}
	for i, s := range wb.sheets {
		if strings.EqualFold(s.name, want) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no sheet named %q; the workbook has %s", want, wb.sheetList())
}

// sheetList quotes the sheet names for a message.
func (wb *workbook) sheetList() string {
	quoted := make([]string, len(wb.sheets))
	for i, s := range wb.sheets {
		quoted[i] = fmt.Sprintf("%q", s.name)
	}
	return strings.Join(quoted, ", ")
}

// note says which sheet of the workbook is read, and which hidden sheets
// before it were passed over, so a person sees what the rows came from.
func (wb *workbook) note(i int) string {
	s := wb.sheets[i]
	if s.hidden {
		return fmt.Sprintf("read sheet %q (sheet %d, hidden)", s.name, i+1)
	}
	var skipped []string
	for _, h := range wb.sheets[:i] {
		if h.hidden {
			skipped = append(skipped, fmt.Sprintf("%q", h.name))
		}
	}
	switch len(skipped) {
	case 0:
		return fmt.Sprintf("read sheet %q (sheet %d)", s.name, i+1)
	case 1:
		return fmt.Sprintf("read sheet %q (sheet %d; sheet %s is hidden)", s.name, i+1, skipped[0])
	}
	return fmt.Sprintf("read sheet %q (sheet %d; sheets %s are hidden)", s.name, i+1, strings.Join(skipped, ", "))
}

// SheetNote says which sheet of the XLSX or ODS manifest at path a reader
// opened with the same sheet option reads, for a line on stderr such as
// `read sheet "Staff" (sheet 2; sheet "Old" is hidden)`. It is "" for the
// other formats. Only the list of sheets (for ODS: the file up to the
// sheet) is read.
func SheetNote(path, sheet string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".xlsx" && ext != ".ods" {
		return "", nil
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", fmt.Errorf("open manifest %s: %w", path, err)
	}
	defer zr.Close()
	if ext == ".ods" {
		r, err := newODSReader(&zr.Reader, path, sheet, math.MaxInt64)
		if err != nil {
			return "", err
		}
		defer r.Close()
		return r.note(), nil
	}
	wb, err := openWorkbook(&zr.Reader, path, math.MaxInt64)
	if err != nil {
		return "", fmt.Errorf("open manifest %s: %w", path, err)
	}
	i, err := wb.find(sheet)
	if err != nil {
		return "", fmt.Errorf("read manifest %s: %w", path, err)
	}
	return wb.note(i), nil
}

// SheetOf returns the name of the sheet r reads, or "" if r is not reading
// an XLSX or ODS workbook.
func SheetOf(r Reader) string {
	switch x := r.(type) {
	case *xlsxReader:
		return x.sheet.name
	case *odsReader:
		return x.sheetName
	}
	return ""
}

// xlsxRow is one row of the sheet: its cells by column, and the cells that
// hold no usable value, with what is wrong with each.
type xlsxRow struct {
	cells []string
	bad   map[int]string
}

// read returns the next non-blank row, cells trimmed, or false after
// queueing a fatal error or ending the queue.
func (r *grid) read() (xlsxRow, bool) {
	for {
		row, err := r.nextRow()
		if err == io.EOF {
			r.q.finish()
			return xlsxRow{}, false
		}
		if err != nil {
			r.q.fatal(fmt.Errorf("read manifest %s: sheet %q: row %d: %w", r.name, r.sheetName, r.num, err))
			return xlsxRow{}, false
		}
		if !trimCells(row.cells) && len(row.bad) == 0 {
			continue
		}
		for i, c := range row.cells {
			row.cells[i] = integerDigits(c)
		}
		return row, true
	}
}

// nextRow decodes the next <row> element, or returns io.EOF.
func (r *xlsxReader) nextRow() (xlsxRow, error) {
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return xlsxRow{}, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "worksheet", "sheetData":
			continue
		case "row":
		default:
			if err := r.dec.Skip(); err != nil {
				return xlsxRow{}, err
			}
			continue
		}
		num := r.num + 1
		if v, ok := attr(se, "r"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= r.num {
				return xlsxRow{}, fmt.Errorf("row number %q after row %d: the file is damaged", Clip(v), r.num)
			}
			num = n
		}
		if num > maxSheetRows {
			return xlsxRow{}, fmt.Errorf("row %d is past the last row a spreadsheet has (%d)", num, maxSheetRows)
		}
		r.num = num
		return r.rowCells()
	}
}

// rowCells decodes the cells of the row just started.
func (r *xlsxReader) rowCells() (xlsxRow, error) {
	var row xlsxRow
	text := 0
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return xlsxRow{}, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local == "row" {
				return row, nil
			}
		case xml.StartElement:
			if t.Name.Local != "c" {
				if err := r.dec.Skip(); err != nil {
					return xlsxRow{}, err
				}
				continue
			}
			col := len(row.cells)
			if ref, ok := attr(t, "r"); ok {
				if col, err = refColumn(ref); err != nil {
					return xlsxRow{}, err
				}
				if col < len(row.cells) {
					return xlsxRow{}, fmt.Errorf("cell %s comes after column %s: the file is damaged", Clip(ref), columnLetter(len(row.cells)-1))
				}
			}
			if col >= maxSheetColumns {
				return xlsxRow{}, fmt.Errorf("a cell past the last column a spreadsheet has (%s)", columnLetter(maxSheetColumns-1))
			}
			val, bad, err := r.cell(t)
			if err != nil {
				return xlsxRow{}, fmt.Errorf("column %s: %w", columnLetter(col), err)
			}
			if text += len(val); text > maxRowText {
				return xlsxRow{}, fmt.Errorf("the row holds more than %s of text", byteSize(maxRowText))
			}
			for len(row.cells) < col {
				row.cells = append(row.cells, "")
			}
			row.cells = append(row.cells, val)
			if bad != "" {
				if row.bad == nil {
					row.bad = map[int]string{}
				}
				row.bad[col] = bad
			}
		}
	}
}

// cell decodes the <c> element just started into its value, or says why it
// has none that may be used. Numbers come as the spreadsheet stores them
// (unformatted), except a number shown as a date, which comes as an ISO
// 8601 date; a boolean cell comes as true or false.
func (r *xlsxReader) cell(se xml.StartElement) (val, bad string, err error) {
	typ, _ := attr(se, "t")
	style := -1
	if s, ok := attr(se, "s"); ok {
		style, _ = strconv.Atoi(s)
	}
	c, err := r.cellParts()
	if err != nil {
		return "", "", err
	}
	if c.formula && typ != "str" && typ != "inlineStr" && len(bytes.TrimSpace(c.v)) == 0 {
		// openpyxl (and pandas through it) writes a formula with an empty
		// <v>: it cannot compute it. Read as empty, the row would create
		// accounts without the value the formula stands for. A formula
		// that computed an empty text is saved t="str", and stays empty.
		return "", errFormulaNoValue, nil
	}
	if c.formula && r.wb.recalc {
		// XlsxWriter (pandas' other engine) saves 0 for every formula
		// and asks the spreadsheet to recompute on load: the 0 is not
		// the value.
		return "", errFormulaNoValue + " (the program that wrote it saved a placeholder and asked for a recalculation)", nil
	}
	return r.cellValue(typ, style, c)
}

// xlsxCell is what a <c> element holds: its stored value <v>, its inline
// rich text <is>, and whether it has a formula <f>.
type xlsxCell struct {
	v, inline []byte
	formula   bool
}

// cellParts reads the <c> element just started up to its end.
func (r *xlsxReader) cellParts() (xlsxCell, error) {
	var c xlsxCell
	for depth := 1; depth > 0; {
		tok, err := r.dec.Token()
		if err != nil {
			return c, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "v":
				if c.v, err = elementText(r.dec); err != nil {
					return c, err
				}
			case "is":
				if err := richText(r.dec, &c.inline); err != nil {
					return c, err
				}
			case "f":
				c.formula = true
				if err := r.dec.Skip(); err != nil {
					return c, err
				}
			default: // an extension
				if err := r.dec.Skip(); err != nil {
					return c, err
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	return c, nil
}

// cellValue is the value of a cell of type typ (the t attribute) and
// style, as cell describes it.
func (r *xlsxReader) cellValue(typ string, style int, c xlsxCell) (val, bad string, err error) {
	v := c.v
	switch typ {
	case "s":
		s := strings.TrimSpace(string(v))
		if s == "" {
			return "", "", nil
		}
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i >= r.sst.len() {
			return "", fmt.Sprintf("the cell points at shared string %s, but the workbook has %d: the file is damaged (save it again from the spreadsheet)", Clip(s), r.sst.len()), nil
		}
		return r.keepQuote(r.sst.get(i), style), "", nil
	case "inlineStr":
		return r.keepQuote(string(unescapeBSTR(c.inline)), style), "", nil
	case "e":
		return "", fmt.Sprintf("error cell %s (a formula that failed in the spreadsheet): fix or empty the cell", Clip(string(v))), nil
	case "b":
		switch strings.TrimSpace(string(v)) {
		case "1":
			return "true", "", nil
		case "0":
			return "false", "", nil
		}
	case "", "n":
		if r.styles.isDate(style) && len(v) > 0 {
			if d, ok := excelDate(string(v), r.wb.date1904); ok {
				return d, "", nil
			}
		}
	}
	return string(v), "", nil
}

// errFormulaNoValue is what a formula cell without a computed value says.
const errFormulaNoValue = "a formula saved without its value: open and save the sheet in a spreadsheet program"

// keepQuote keeps the leading ' of a text typed after a ' (quotePrefix):
// it is part of the value, not a guard like the ones Escape writes, so it
// is guarded itself for Unescape to take off again.
func (r *xlsxReader) keepQuote(v string, style int) string {
	if strings.HasPrefix(v, "'") && r.styles.isQuoted(style) {
		return "'" + v
	}
	return v
}

// elementText returns the text of the element just started and consumes
// its end.
func elementText(d *xml.Decoder) ([]byte, error) {
	var b []byte
	for depth := 1; depth > 0; {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if len(b)+len(t) > maxXMLRun {
				return nil, fmt.Errorf("a value of more than %s", byteSize(maxXMLRun))
			}
			b = append(b, t...)
		}
	}
	return b, nil
}

// attr returns the value of the attribute local of se.
func attr(se xml.StartElement, local string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// refColumn returns the zero-based column of a cell reference such as "AB12".
func refColumn(ref string) (int, error) {
	col, i := 0, 0
	for ; i < len(ref) && i < 4; i++ {
		c := ref[i] | 0x20 // lower case
		if c < 'a' || c > 'z' {
			break
		}
		col = col*26 + int(c-'a'+1)
	}
	if i == 0 || !allDigits(ref[i:]) {
		return 0, fmt.Errorf("cell reference %q: the file is damaged", Clip(ref))
	}
	return col - 1, nil
}

// readHeader reads the first non-blank row as the header.
func (r *grid) readHeader() {
	row, ok := r.read()
	if !ok {
		if r.q.end == io.EOF {
			r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: 1, Msg: "the sheet is empty: no header row"})
		}
		return
	}
	for _, i := range slices.Sorted(maps.Keys(row.bad)) {
		r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: r.num, Column: "column " + columnLetter(i), Msg: row.bad[i]})
	}
	var problems []error
	r.hdr, problems = newHeader(r.name, r.num, row.cells)
	r.q.problems = append(r.q.problems, problems...)
}

// Columns returns the distinct header names in file order.
func (r *grid) Columns() []string {
	if r.hdr == nil {
		return nil
	}
	return slices.Clone(r.hdr.columns)
}

// Written returns the header of column as the file writes it.
func (r *grid) Written(column string) string { return r.hdr.writtenAs(column) }

// Next returns the next row, a *Problem, io.EOF or a fatal error.
func (r *grid) Next() (Row, error) {
	return r.q.next(r.fill)
}

// fill reads rows until it has queued a row, a problem or the end. Cells to
// the right of the header count as cells under an empty header. A row with
// a cell that holds no usable value (an error cell, a broken shared string)
// is not returned: one value missing would change what the row does.
func (r *grid) fill() {
	row, ok := r.read()
	if !ok {
		return
	}
	if len(row.bad) > 0 {
		for _, i := range slices.Sorted(maps.Keys(row.bad)) {
			r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: r.num, Column: r.hdr.column(i), Msg: row.bad[i]})
		}
		return
	}
	built, ok, rowProblems, headerProblems := r.hdr.build(r.num, row.cells)
	r.q.problems = append(r.q.problems, headerProblems...)
	r.q.problems = append(r.q.problems, rowProblems...)
	if ok {
		r.q.row, r.q.hasRow = built, true
	}
}

// Close closes the workbook.
func (r *grid) Close() error {
	if r.part != nil {
		_ = r.part.Close()
		r.part = nil
	}
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	if err != nil {
		return fmt.Errorf("close manifest %s: %w", r.name, err)
	}
	return nil
}

// maxExactDigits is how many significant digits a spreadsheet number keeps:
// Excel stores doubles and shows at most 15 digits.
const maxExactDigits = 15

// maxDoubleDigits is the number of integer digits of the largest double;
// longer "numbers" are text that only looks like one.
const maxDoubleDigits = 309

// integerDigits rewrites a number in exponent form, such as
// "4.47470274584E+11" (as some writers store a numeric cell), as its integer
// digits when it is an integer of at most 15 significant digits, so that a
// phone number stored as a number arrives as "447470274584". Anything else
// (plain text, fractions, longer numbers) is returned unchanged; the caller
// decides whether digits were lost.
//
// A raw cell value does not say whether the cell was numeric, so a text cell
// holding exactly such a number is rewritten too. The exponent must carry a
// sign, as every writer of numbers emits, which keeps words like "2e10" intact.
func integerDigits(s string) string {
	mant, exp, ok := strings.Cut(s, "E")
	if !ok {
		if mant, exp, ok = strings.Cut(s, "e"); !ok {
			return s
		}
	}
	sign := ""
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		if mant[0] == '-' {
			sign = "-"
		}
		mant = mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if !allDigits(intPart) || (frac != "" && !allDigits(frac)) || strings.HasSuffix(mant, ".") {
		return s
	}
	if len(exp) < 2 || (exp[0] != '+' && exp[0] != '-') || !allDigits(exp[1:]) || len(exp) > 5 {
		return s
	}
	e := 0
	for _, c := range exp[1:] {
		e = e*10 + int(c-'0')
	}
	if exp[0] == '-' {
		e = -e
	}
	// The value is 0.digits × 10^point.
	digits := intPart + frac
	point := len(intPart) + e
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	digits, point = digits[lead:], point-lead
	digits = strings.TrimRight(digits, "0")
	switch {
	case digits == "":
		return "0"
	case len(digits) > maxExactDigits, point < len(digits), point > maxDoubleDigits:
		return s
	}
	return sign + digits + strings.Repeat("0", point-len(digits))
}

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
