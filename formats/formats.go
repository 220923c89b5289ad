// Package formats reads manifest files (CSV, TSV, XLSX and JSONL) as a stream
// of rows keyed by normalised column name.
//
// The package knows file formats, not Synapse: it trims and normalises header
// names, reports what is wrong with the file itself (duplicate or missing
// headers, stray cells, invalid UTF-8, malformed lines) as a [*Problem] with a
// row and column a person can find in a spreadsheet, and leaves the meaning
// of the values to the caller.
//
// Row numbers are what a spreadsheet shows: the header is normally row 1, a
// cell that spans several lines in a CSV file is still one row, and blank
// lines or rows are counted but never returned. For JSONL the row number is
// the 1-based line number.
package formats

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Row is one manifest row as read from the file.
type Row struct {
	Num    int              // spreadsheet row number (header = row 1); for JSONL the 1-based line number
	Fields map[string]Field // keyed by normalised column name (lowercase, trimmed); empty cells are omitted
}

// Field is one non-empty cell.
type Field struct {
	Column string // the header as written in the file (for messages)
	// Value is the scalar text of the cell. JSONL strings arrive as they are,
	// numbers as their literal digits, booleans as "true" or "false". For a
	// JSONL list, Value holds the entries joined with ";".
	Value string
	// List is set when the source held a list (JSONL arrays); it is nil for
	// CSV and XLSX cells, whose caller splits Value on ';'.
	List []string
}

// Problem is one thing wrong in a manifest, printed as FILE:ROW:COLUMN: message.
type Problem struct {
	File   string
	Row    int
	Column string
	Msg    string
}

// Error formats the problem as FILE:ROW:COLUMN: msg, or FILE:ROW: msg when
// the problem concerns no single column.
func (p *Problem) Error() string {
	if p.Column == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Row, p.Msg)
	}
	return fmt.Sprintf("%s:%d:%s: %s", p.File, p.Row, p.Column, p.Msg)
}

// Reader streams the rows of one manifest file.
//
// Next returns io.EOF at the end and a *Problem for something wrong in the
// file; the caller may keep calling Next after a *Problem to collect more of
// them. A row with a problem of its own is not returned; a problem with the
// header (a duplicate column, data under an empty header) is reported once,
// and the rows go on without the offending column. Any other error is fatal
// and is returned again by every later call.
type Reader interface {
	// Columns returns the normalised header names in file order, each once.
	// For JSONL the set grows as lines are read; Columns returns what is
	// known so far.
	Columns() []string
	Next() (Row, error)
	Close() error
}

// writer is a Reader that knows how each column's header was written.
type writer interface {
	Written(column string) string
}

// Written returns column's header as the file writes it ("Date of Hire"
// for the column date of hire), for messages: an admin should see the
// header they typed. It is column itself when r cannot tell.
func Written(r Reader, column string) string {
	if w, ok := r.(writer); ok {
		if s := w.Written(column); s != "" {
			return s
		}
	}
	return column
}

// Options adjusts how Open reads a manifest.
type Options struct {
	// Sheet is the XLSX or ODS sheet to read, matched case-insensitively;
	// "" means the first visible sheet. A hidden sheet is read only when
	// named.
	Sheet string
	// MaxUnzip bounds what an XLSX or ODS workbook may inflate to, all parts
	// together; 0 means DefaultMaxUnzip.
	MaxUnzip int64
}

// Open opens the manifest at path, choosing the format by extension: .csv,
// .tsv, .xlsx, .ods, .jsonl or .ndjson; a file whose content is another
// format than its name says is refused, saying what it is. The header (if the format has one) is read
// before Open returns, so Columns is ready at once.
func Open(path string, opts Options) (Reader, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if opts.Sheet != "" && ext != ".xlsx" && ext != ".ods" {
		return nil, fmt.Errorf("open manifest %s: a sheet name (%q) only applies to .xlsx and .ods files", path, opts.Sheet)
	}
	switch ext {
	case ".csv", ".tsv", ".xlsx", ".ods", ".jsonl", ".ndjson":
		if err := checkContent(path, ext); err != nil {
			return nil, err
		}
	}
	switch ext {
	case ".csv":
		return openCSV(path, 0)
	case ".tsv":
		return openCSV(path, '\t')
	case ".xlsx":
		return openXLSX(path, opts.Sheet, opts.MaxUnzip)
	case ".ods":
		return openODS(path, opts.Sheet, opts.MaxUnzip)
	case ".jsonl", ".ndjson":
		return openJSONL(path)
	case ".xls":
		return nil, fmt.Errorf("open manifest %s: the old .xls format is not supported: save it as .xlsx or CSV UTF-8", path)
	case "":
		return nil, fmt.Errorf("open manifest %s: no file extension: name it .csv, .tsv, .xlsx, .ods, .jsonl or .ndjson", path)
	default:
		return nil, fmt.Errorf("open manifest %s: unknown format %q: use .csv, .tsv, .xlsx, .ods, .jsonl or .ndjson", path, ext)
	}
}

// queue holds what Next hands out next: problems first, then at most one
// row, then the terminal error once the source is exhausted or broken.
type queue struct {
	problems []error
	row      Row
	hasRow   bool
	end      error // io.EOF or a fatal error; sticky
}

// next hands out the next queued item, calling fill whenever the queue is
// empty and the reader has not ended.
func (q *queue) next(fill func()) (Row, error) {
	for {
		if len(q.problems) > 0 {
			p := q.problems[0]
			q.problems = q.problems[1:]
			return Row{}, p
		}
		if q.hasRow {
			q.hasRow = false
			row := q.row
			q.row = Row{}
			return row, nil
		}
		if q.end != nil {
			return Row{}, q.end
		}
		fill()
	}
}

// fatal ends the queue with err unless it has already ended.
func (q *queue) fatal(err error) {
	if q.end == nil {
		q.end = err
	}
}

// finish ends the queue normally.
func (q *queue) finish() { q.fatal(io.EOF) }
