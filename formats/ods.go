package formats

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The OpenDocument spreadsheet reader is our own, on archive/zip and
// encoding/xml, like the XLSX reader: the Go ODS packages the module proxy
// offers are unmaintained or refused, and read content.xml whole into
// memory, which a sheet whose rows say "repeat 1,048,576 times" turns into
// a bomb. This one streams content.xml and never materialises a repeated
// empty cell or row.

// The OpenDocument namespaces the reader looks at.
const (
	nsOffice  = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
	nsTable   = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
	nsText    = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
	nsStyle   = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
	nsCalcext = "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"
)

// odsReader streams one sheet (table) of an OpenDocument spreadsheet.
type odsReader struct {
	grid
	dec *xml.Decoder
	// seen lists the sheets up to the one read, for messages and notes.
	seen []sheetEntry
	// copies is how many more times last is handed out: a row with
	// content that the file says is repeated.
	copies int
	last   xlsxRow
}

// openODS opens the spreadsheet at path and reads the header of sheet ("" for
// the first visible sheet).
func openODS(path, sheet string, maxUnzip int64) (Reader, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", path, err)
	}
	return closeOnError(zr, func() (*odsReader, error) { return newODSReader(&zr.Reader, path, sheet, maxUnzip) })
}

// newODSReader finds the sheet in zr's content.xml and reads its header.
func newODSReader(zr *zip.Reader, name, sheet string, maxUnzip int64) (*odsReader, error) {
	if err := checkInflate(zr, maxUnzip); err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", name, err)
	}
	var content *zip.File
	for _, f := range zr.File {
		if f.Name == "content.xml" {
			content = f
		}
	}
	if content == nil {
		return nil, fmt.Errorf("open manifest %s: the spreadsheet has no content.xml: the file is damaged", name)
	}
	rc, err := content.Open()
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: content.xml: %w", name, err)
	}
	r := &odsReader{grid: grid{name: name, part: &runGuard{r: rc, c: rc, part: "content.xml"}}}
	r.grid.nextRow = r.nextRow
	r.dec = xml.NewDecoder(r.part)
	if err := r.findSheet(sheet); err != nil {
		_ = r.part.Close()
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	r.readHeader()
	return r, nil
}

// findSheet reads content.xml up to the start of the sheet to read: the
// first visible one when want is "", else the one named want (in any case,
// as the XLSX reader matches). Sheets before it are skipped unread; a
// hidden sheet is read only when named. Hidden sheets are known from their
// table style (table:display="false"), which comes before the sheets.
func (r *odsReader) findSheet(want string) error {
	hiddenStyles := map[string]bool{}
	style := "" // the table style being read
	for {
		tok, err := r.dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("content.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Space == nsStyle && t.Name.Local == "style" {
				style = ""
			}
		case xml.StartElement:
			switch {
			case t.Name.Space == nsStyle && t.Name.Local == "style":
				if f, _ := attrNS(t, nsStyle, "family"); f == "table" {
					style, _ = attrNS(t, nsStyle, "name")
				}
			case t.Name.Space == nsStyle && t.Name.Local == "table-properties" && style != "":
				if d, _ := attrNS(t, nsTable, "display"); d == "false" {
					if len(hiddenStyles) == maxEntries {
						return fmt.Errorf("content.xml: more than %d hidden table styles", maxEntries)
					}
					hiddenStyles[style] = true
				}
			case t.Name.Space == nsTable && t.Name.Local == "table":
				s := sheetEntry{}
				s.name, _ = attrNS(t, nsTable, "name")
				st, _ := attrNS(t, nsTable, "style-name")
				s.hidden = hiddenStyles[st]
				if len(r.seen) == maxEntries {
					return fmt.Errorf("content.xml: more than %d sheets", maxEntries)
				}
				r.seen = append(r.seen, s)
				if (want == "" && !s.hidden) || (want != "" && strings.EqualFold(s.name, want)) {
					r.sheetName = s.name
					return nil
				}
				if err := r.dec.Skip(); err != nil {
					return fmt.Errorf("content.xml: sheet %q: %w", s.name, err)
				}
			}
		}
	}
	if len(r.seen) == 0 {
		return errors.New("the spreadsheet has no sheets")
	}
	_, err := (&workbook{sheets: r.seen}).find(want)
	return err
}

// note says which sheet is read and which hidden ones before it were passed
// over, as the XLSX reader's note does.
func (r *odsReader) note() string {
	return (&workbook{sheets: r.seen}).note(len(r.seen) - 1)
}

// nextRow decodes the next row of the sheet with content, or returns
// io.EOF at the end of the sheet. Empty rows, however often the file
// repeats them, only move the row number.
func (r *odsReader) nextRow() (xlsxRow, error) {
	if r.copies > 0 {
		r.copies--
		r.num++
		return xlsxRow{cells: append([]string(nil), r.last.cells...), bad: r.last.bad}, nil
	}
	for {
		tok, err := r.dec.Token()
		if err != nil {
			if err == io.EOF {
				return xlsxRow{}, errors.New("content.xml ends inside the sheet: the file is damaged")
			}
			return xlsxRow{}, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Space == nsTable && t.Name.Local == "table" {
				return xlsxRow{}, io.EOF
			}
		case xml.StartElement:
			if t.Name.Space != nsTable {
				if err := r.dec.Skip(); err != nil {
					return xlsxRow{}, err
				}
				continue
			}
			switch t.Name.Local {
			case "table-header-rows", "table-row-group", "table-rows":
				continue // rows inside
			case "table-row":
			default: // columns, shapes, named ranges
				if err := r.dec.Skip(); err != nil {
					return xlsxRow{}, err
				}
				continue
			}
			repeat, err := repeated(t, "number-rows-repeated")
			if err != nil {
				return xlsxRow{}, err
			}
			row, err := r.rowCells(r.num + 1)
			if err != nil {
				return xlsxRow{}, err
			}
			if len(row.cells) == 0 && len(row.bad) == 0 {
				// LibreOffice pads a sheet with one empty row repeated
				// to the last row a spreadsheet has.
				r.num = min(r.num+repeat, maxSheetRows)
				continue
			}
			if r.num+repeat > maxSheetRows {
				return xlsxRow{}, fmt.Errorf("row %d is past the last row a spreadsheet has (%d)", r.num+repeat, maxSheetRows)
			}
			r.num++
			r.copies, r.last = repeat-1, row
			return xlsxRow{cells: append([]string(nil), row.cells...), bad: row.bad}, nil
		}
	}
}

// repeated reads a table:number-…-repeated attribute: at least 1, and no
// more than a sheet has rows.
func repeated(se xml.StartElement, local string) (int, error) {
	v, ok := attrNS(se, nsTable, local)
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > maxSheetRows {
		return 0, fmt.Errorf("%s=%q: the file is damaged", local, Clip(v))
	}
	return n, nil
}

// rowCells decodes the cells of the row just started, row number num for
// messages. Empty cells are counted, not stored, until a cell with content
// follows them: a row's trailing "1,000 empty cells" costs nothing.
func (r *odsReader) rowCells(num int) (xlsxRow, error) {
	var row xlsxRow
	empty, text := 0, 0
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return xlsxRow{}, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Space == nsTable && t.Name.Local == "table-row" {
				return row, nil
			}
		case xml.StartElement:
			if t.Name.Space != nsTable || (t.Name.Local != "table-cell" && t.Name.Local != "covered-table-cell") {
				if err := r.dec.Skip(); err != nil {
					return xlsxRow{}, err
				}
				continue
			}
			n, err := repeated(t, "number-columns-repeated")
			if err != nil {
				return xlsxRow{}, err
			}
			col := len(row.cells) + empty
			val, bad, err := r.cell(t)
			if err != nil {
				return xlsxRow{}, fmt.Errorf("column %s: %w", columnLetter(min(col, maxSheetColumns-1)), err)
			}
			if val == "" && bad == "" {
				empty += n
				continue
			}
			if col+n > maxSheetColumns {
				return xlsxRow{}, fmt.Errorf("a cell past the last column a spreadsheet has (%s)", columnLetter(maxSheetColumns-1))
			}
			if text += len(val) * n; text > maxRowText {
				return xlsxRow{}, fmt.Errorf("the row holds more than %s of text", byteSize(maxRowText))
			}
			for range empty {
				row.cells = append(row.cells, "")
			}
			empty = 0
			for i := range n {
				row.cells = append(row.cells, val)
				if bad != "" {
					if row.bad == nil {
						row.bad = map[int]string{}
					}
					row.bad[col+i] = bad
				}
			}
		}
	}
}

// cell decodes the table cell just started into its value, or says why it
// has none that may be used. Numbers come as the spreadsheet stores them
// (office:value, unformatted), dates as ISO 8601 (office:date-value),
// booleans as true or false, text as its paragraphs joined by newlines.
func (r *odsReader) cell(se xml.StartElement) (val, bad string, err error) {
	text, err := odsCellText(r.dec)
	if err != nil {
		return "", "", err
	}
	_, formula := attrNS(se, nsTable, "formula")
	if t, _ := attrNS(se, nsCalcext, "value-type"); t == "error" {
		return "", fmt.Sprintf("error cell %s (a formula that failed in the spreadsheet): fix or empty the cell", Clip(text)), nil
	}
	typ, _ := attrNS(se, nsOffice, "value-type")
	valueOf := func(local string) (string, string, error) {
		if v, ok := attrNS(se, nsOffice, local); ok {
			return v, "", nil
		}
		if formula {
			return "", errFormulaNoValue, nil
		}
		return text, "", nil
	}
	switch typ {
	case "float", "percentage", "currency":
		return valueOf("value")
	case "date":
		v, bad, err := valueOf("date-value")
		return strings.TrimSuffix(v, "T00:00:00"), bad, err
	case "time":
		return valueOf("time-value")
	case "boolean":
		v, bad, err := valueOf("boolean-value")
		return strings.ToLower(v), bad, err
	case "string":
		if v, ok := attrNS(se, nsOffice, "string-value"); ok {
			return v, "", nil
		}
		return text, "", nil // a formula that computed "" saves typed text
	}
	if formula {
		// No value type at all: a writer that stored the formula and
		// left its computation to the spreadsheet.
		return "", errFormulaNoValue, nil
	}
	return text, "", nil
}

// odsCellText returns the text of the cell just started and consumes its end:
// its paragraphs (text:p, text:h) joined by newlines, with text:s, text:tab
// and text:line-break as the characters they stand for. Comments
// (office:annotation) are not part of it.
func odsCellText(d *xml.Decoder) (string, error) {
	var o odsText
	for depth := 1; depth > 0; {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if t.Name.Space == nsOffice && t.Name.Local == "annotation" {
				if err := d.Skip(); err != nil {
					return "", err
				}
				depth--
				continue
			}
			if err := o.start(t); err != nil {
				return "", err
			}
		case xml.EndElement:
			depth--
			if t.Name.Space == nsText && (t.Name.Local == "p" || t.Name.Local == "h") {
				o.inPara--
			}
		case xml.CharData:
			if o.inPara == 0 {
				continue // the layout between paragraphs
			}
			if err := o.grow(string(t)); err != nil {
				return "", err
			}
		}
	}
	return o.b.String(), nil
}

// odsText is the text of an ODS cell as odsCellText reads it.
type odsText struct {
	b      strings.Builder
	paras  int // paragraphs begun
	inPara int // depth of paragraphs now open: text outside is layout
}

// grow adds s, refusing a text over maxXMLRun.
func (o *odsText) grow(s string) error {
	if o.b.Len()+len(s) > maxXMLRun {
		return fmt.Errorf("a text of more than %s", byteSize(maxXMLRun))
	}
	o.b.WriteString(s)
	return nil
}

// start takes an element begun inside the cell: a paragraph, or a text:
// element that stands for characters. Others are markup around the text.
func (o *odsText) start(t xml.StartElement) error {
	if t.Name.Space != nsText {
		return nil
	}
	switch t.Name.Local {
	case "p", "h":
		o.inPara++
		if o.paras++; o.paras > 1 {
			return o.grow("\n")
		}
	case "s":
		n := 1
		if v, ok := attrNS(t, nsText, "c"); ok {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 || n > maxXMLRun {
				return fmt.Errorf("text:c=%q: the file is damaged", Clip(v))
			}
		}
		return o.grow(strings.Repeat(" ", min(n, maxXMLRun-o.b.Len()+1)))
	case "tab":
		return o.grow("\t")
	case "line-break":
		return o.grow("\n")
	}
	return nil
}

// attrNS returns the value of the attribute local in namespace space.
func attrNS(se xml.StartElement, space, local string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Local == local && a.Name.Space == space {
			return a.Value, true
		}
	}
	return "", false
}
