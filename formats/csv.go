package formats

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// csvBufferSize is the read buffer; it also bounds how much of the first
// line is inspected to detect the separator.
const csvBufferSize = 256 << 10

// Byte order marks a spreadsheet program may put at the start of a file.
const (
	utf8BOM    = "\xEF\xBB\xBF"
	utf16LEBOM = "\xFF\xFE"
	utf16BEBOM = "\xFE\xFF"
)

// csvReader reads CSV and TSV manifests.
type csvReader struct {
	name   string
	closer io.Closer
	cr     *csv.Reader
	hdr    *header
	num    int // spreadsheet row number of the last record read
	// lastLine is the file line on which the last record ended; blank lines
	// between records are rows in a spreadsheet, so they are counted.
	lastLine int
	q        queue
}

// openCSV opens a CSV file; sep 0 means detect the separator.
func openCSV(path string, sep rune) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	r, err := newCSVReader(f, path, sep)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// newCSVReader reads the header from src and returns a reader positioned on
// the first data record. name is used in problems and errors; sep 0 means
// detect the separator from the header line.
func newCSVReader(src io.Reader, name string, sep rune) (*csvReader, error) {
	br := bufio.NewReaderSize(src, csvBufferSize)
	start, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	switch s := string(start); {
	case strings.HasPrefix(s, utf8BOM):
		_, _ = br.Discard(len(utf8BOM))
	case strings.HasPrefix(s, utf16LEBOM), strings.HasPrefix(s, utf16BEBOM):
		// Excel's "Unicode text" export; encoding/csv would read it as noise.
		return nil, fmt.Errorf("read manifest %s: the file is UTF-16: save it as CSV UTF-8", name)
	}
	if sep == 0 {
		sep = detectSeparator(br)
	}
	cr := csv.NewReader(br)
	cr.Comma = sep
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	// Lets `a, "b"` parse as a quoted field; with tabs it would eat empty
	// fields, since a tab is leading space too.
	cr.TrimLeadingSpace = sep != '\t'
	r := &csvReader{name: name, cr: cr}
	r.readHeader()
	return r, nil
}

// detectSeparator counts commas, semicolons and tabs outside quotes in the
// first line (a quoted header may span lines) and picks the most frequent,
// preferring a comma on a tie or when there is none.
func detectSeparator(br *bufio.Reader) rune {
	buf, _ := br.Peek(br.Size())
	var commas, semis, tabs int
	quoted := false
scan:
	for _, b := range buf {
		switch {
		case b == '"':
			quoted = !quoted
		case quoted:
		case b == '\n':
			break scan
		case b == ',':
			commas++
		case b == ';':
			semis++
		case b == '\t':
			tabs++
		}
	}
	switch {
	case semis > commas && semis >= tabs:
		return ';'
	case tabs > commas && tabs > semis:
		return '\t'
	default:
		return ','
	}
}

// read reads the next non-blank record, trims its cells and tracks its
// spreadsheet row number. It returns nil cells at the end or after queueing
// a problem or a fatal error.
func (r *csvReader) read() (cells []string, ok bool) {
	for {
		rec, err := r.cr.Read()
		if err != nil {
			var pe *csv.ParseError
			switch {
			case errors.Is(err, io.EOF):
				r.q.finish()
			case errors.As(err, &pe):
				r.num += max(pe.StartLine-r.lastLine, 1)
				r.lastLine = pe.Line
				r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: r.num,
					Msg: fmt.Sprintf("invalid CSV on line %d, character %d: %v", pe.Line, pe.Column, pe.Err)})
			default:
				r.q.fatal(fmt.Errorf("read manifest %s: %w", r.name, err))
			}
			return nil, false
		}
		startLine, _ := r.cr.FieldPos(0)
		endLine, _ := r.cr.FieldPos(len(rec) - 1)
		endLine += strings.Count(rec[len(rec)-1], "\n")
		r.num += max(startLine-r.lastLine, 1)
		r.lastLine = endLine
		if trimCells(rec) {
			return rec, true
		}
	}
}

// readHeader reads the first non-blank record as the header.
func (r *csvReader) readHeader() {
	cells, ok := r.read()
	if !ok {
		if r.q.end == io.EOF && len(r.q.problems) == 0 {
			r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: 1, Msg: "the file is empty: no header row"})
		}
		// Without a header no row can be read.
		r.q.finish()
		return
	}
	var problems []error
	r.hdr, problems = newHeader(r.name, r.num, cells)
	r.q.problems = append(r.q.problems, problems...)
}

// Columns returns the distinct header names in file order.
func (r *csvReader) Columns() []string {
	if r.hdr == nil {
		return nil
	}
	return slices.Clone(r.hdr.columns)
}

// Written returns the header of column as the file writes it.
func (r *csvReader) Written(column string) string { return r.hdr.writtenAs(column) }

// Next returns the next row, a *Problem, io.EOF or a fatal error.
func (r *csvReader) Next() (Row, error) {
	return r.q.next(r.fill)
}

// fill reads records until it has queued a row, a problem or the end.
func (r *csvReader) fill() {
	cells, ok := r.read()
	if !ok {
		return
	}
	if n := lastNonEmpty(cells); n > r.hdr.width() {
		r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: r.num,
			Msg: fmt.Sprintf("row has %d cells, header has %d", n, r.hdr.width())})
		return
	}
	row, ok, rowProblems, headerProblems := r.hdr.build(r.num, cells)
	r.q.problems = append(r.q.problems, headerProblems...)
	r.q.problems = append(r.q.problems, rowProblems...)
	if ok {
		r.q.row, r.q.hasRow = row, true
	}
}

// Close closes the underlying file.
func (r *csvReader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}
