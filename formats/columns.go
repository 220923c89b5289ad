package formats

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Key reduces a header to its letters and digits in lower case, so that
// "User ID", "user-id", "UserID" and "user_id" are one column.
func Key(header string) string {
	var b strings.Builder
	for _, r := range header {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// Rename wraps r so that each column is called by name(column), column
// being the name r gives it. name returns "" to skip a column (its cells
// are dropped). Two columns that name alike are one problem, reported once
// with both names; the cells of the later one are dropped.
func Rename(r Reader, file string, name func(column string) string) Reader {
	n := &renamer{Reader: r, file: file, name: name, to: map[string]string{}, owner: map[string]string{}}
	for _, c := range r.Columns() {
		n.resolve(c, 1)
	}
	return n
}

type renamer struct {
	Reader
	file     string
	name     func(string) string
	to       map[string]string // column as read -> new name ("" skipped or a later duplicate)
	owner    map[string]string // new name -> the column that has it
	columns  []string
	problems []error
	pending  *Row
}

// resolve names column c, seen first on row num.
func (n *renamer) resolve(c string, num int) string {
	if to, ok := n.to[c]; ok {
		return to
	}
	to := n.name(c)
	if first, dup := n.owner[to]; dup && to != "" {
		n.problems = append(n.problems, &Problem{File: n.file, Row: num, Column: Clip(c),
			Msg: fmt.Sprintf("columns %s and %s are both the column %s: keep one, or skip one with --ignore", Quote(first), Quote(c), to)})
		to = ""
	} else if to != "" {
		n.owner[to] = c
		n.columns = append(n.columns, to)
	}
	n.to[c] = to
	return to
}

// Columns returns the new names in file order, each once.
func (n *renamer) Columns() []string {
	for _, c := range n.Reader.Columns() {
		n.resolve(c, 1)
	}
	return n.columns
}

// Written returns the header of the column now named column as the file
// writes it.
func (n *renamer) Written(column string) string {
	if c, ok := n.owner[column]; ok {
		return Written(n.Reader, c)
	}
	return Written(n.Reader, column)
}

func (n *renamer) Next() (Row, error) {
	for {
		if len(n.problems) > 0 {
			p := n.problems[0]
			n.problems = n.problems[1:]
			return Row{}, p
		}
		if n.pending != nil {
			row := *n.pending
			n.pending = nil
			return row, nil
		}
		row, err := n.Reader.Next()
		var p *Problem
		if errors.As(err, &p) {
			p.File = n.file // the reader knows a path; the caller may name it otherwise
		}
		if err != nil {
			return row, err
		}
		// Most manifests use the canonical names: their rows pass as they
		// are, without a second map a row (a resume reads a million).
		fields := row.Fields
		for c := range row.Fields {
			if n.resolve(c, row.Num) != c {
				fields = n.renamed(row)
				break
			}
		}
		if len(fields) == 0 {
			// Data only in skipped columns: the row is as blank as an
			// empty one, which readers never return.
			continue
		}
		row.Fields = fields
		// A column first seen on this row (JSONL) has its problem told
		// before the row.
		n.pending = &row
	}
}

// renamed is row's cells under their new names, without skipped columns.
func (n *renamer) renamed(row Row) map[string]Field {
	fields := make(map[string]Field, len(row.Fields))
	for c, f := range row.Fields {
		if to := n.resolve(c, row.Num); to != "" {
			fields[to] = f
		}
	}
	return fields
}

// EditDistance is the Levenshtein distance of a and b, byte-wise: names
// and headers are mostly ASCII, and a wrong guess only costs a suggestion.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
