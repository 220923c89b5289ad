package formats

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// normalise turns a header name or JSON key into the key used in Row.Fields.
func normalise(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// columnLetter returns the spreadsheet name of the zero-based column i:
// A … Z, AA, AB …, which is what a person sees when the file is opened in a
// spreadsheet program.
func columnLetter(i int) string {
	var b []byte
	for n := i + 1; n > 0; n = (n - 1) / 26 {
		b = append(b, byte('A'+(n-1)%26))
	}
	for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
		b[l], b[r] = b[r], b[l]
	}
	return string(b)
}

// header maps the cell positions of a spreadsheet-like file (CSV or XLSX) to
// column names and turns data rows into Rows.
type header struct {
	file    string
	row     int      // row number of the header itself
	names   []string // normalised name per position; "" when the position has no usable name
	written []string // trimmed header text per position, for messages
	// ignored marks positions whose data is dropped silently because the
	// header cell has already been reported (duplicate or invalid name).
	ignored []bool
	columns []string     // distinct names in file order
	flagged map[int]bool // unnamed positions already reported for having data
}

// newHeader reads the header cells at row num and returns it with the
// problems found in it.
func newHeader(file string, num int, cells []string) (*header, []error) {
	h := &header{
		file:    file,
		row:     num,
		names:   make([]string, len(cells)),
		written: make([]string, len(cells)),
		ignored: make([]bool, len(cells)),
		flagged: make(map[int]bool),
	}
	var problems []error
	first := make(map[string]int, len(cells))
	for i, cell := range cells {
		text := strings.TrimSpace(cell)
		if !utf8.ValidString(text) {
			h.ignored[i] = true
			problems = append(problems, &Problem{File: file, Row: num, Column: "column " + columnLetter(i),
				Msg: "header is not valid UTF-8 (save the file as UTF-8)"})
			continue
		}
		// A header cell names the column in every message: a long one is
		// shown shortened.
		h.written[i] = Clip(text)
		name := normalise(text)
		if name == "" {
			continue
		}
		if j, dup := first[name]; dup {
			h.ignored[i] = true
			problems = append(problems, &Problem{File: file, Row: num, Column: text,
				Msg: fmt.Sprintf("column %s appears twice (columns %s and %s)", Quote(name), columnLetter(j), columnLetter(i))})
			continue
		}
		first[name] = i
		h.names[i] = name
		h.columns = append(h.columns, name)
	}
	return h, problems
}

// writtenAs returns the header text of the column named name, or "".
func (h *header) writtenAs(name string) string {
	if h == nil {
		return ""
	}
	for i, n := range h.names {
		if n == name {
			return h.written[i]
		}
	}
	return ""
}

// width is the number of header cells, including empty ones.
func (h *header) width() int { return len(h.names) }

// build turns the trimmed cells of row num into a Row. It returns the
// problems with the row itself (which mean the row must not be used) and,
// separately, header problems newly found through this row (data under a
// column without a name), which leave the row usable.
func (h *header) build(num int, cells []string) (row Row, ok bool, rowProblems, headerProblems []error) {
	fields := make(map[string]Field, len(h.columns))
	for i, v := range cells {
		if v == "" {
			continue
		}
		if i < len(h.ignored) && h.ignored[i] {
			continue
		}
		if i >= len(h.names) || h.names[i] == "" {
			if !h.flagged[i] {
				h.flagged[i] = true
				headerProblems = append(headerProblems, &Problem{File: h.file, Row: h.row, Column: "column " + columnLetter(i),
					Msg: fmt.Sprintf("the header cell is empty but row %d has data in this column", num)})
			}
			continue
		}
		if !utf8.ValidString(v) {
			rowProblems = append(rowProblems, &Problem{File: h.file, Row: num, Column: h.written[i],
				Msg: "value is not valid UTF-8 (save the file as UTF-8)"})
			continue
		}
		v = Unescape(v)
		if msg := checkText(v); msg != "" {
			rowProblems = append(rowProblems, &Problem{File: h.file, Row: num, Column: h.written[i], Msg: msg})
			continue
		}
		fields[h.names[i]] = Field{Column: h.written[i], Value: v}
	}
	if len(rowProblems) > 0 || len(fields) == 0 {
		return Row{}, false, rowProblems, headerProblems
	}
	return Row{Num: num, Fields: fields}, true, nil, headerProblems
}

// column names position i for a message: its header, or its letter.
func (h *header) column(i int) string {
	if i < len(h.written) && h.written[i] != "" {
		return h.written[i]
	}
	return "column " + columnLetter(i)
}

// trimCells trims every cell in place and reports whether any is non-empty.
// A cell the writer guarded (see Escape) is kept exactly: its spaces are
// part of the value, not an accident of typing.
func trimCells(cells []string) bool {
	found := false
	for i, c := range cells {
		if Unescape(c) == c {
			cells[i] = strings.TrimSpace(c)
		}
		if cells[i] != "" {
			found = true
		}
	}
	return found
}

// lastNonEmpty returns the number of cells up to and including the last
// non-empty one.
func lastNonEmpty(cells []string) int {
	n := len(cells)
	for n > 0 && cells[n-1] == "" {
		n--
	}
	return n
}
