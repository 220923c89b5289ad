package jobs

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/formats"
)

// ColumnNames returns how a manifest's columns are named for Parse: by
// --map first, --ignore next (""), then the known column whose letters and
// digits match in any case ("User ID" is user_id), else the column as read,
// which CheckColumns reports as unknown. A --map to no known column is an
// error.
func ColumnNames(opt ParseOptions) (func(column string) string, error) {
	byKey := map[string]string{}
	for _, c := range append(KnownColumns(), readOnlyColumns...) {
		byKey[formats.Key(c)] = c
	}
	mapped := map[string]string{}
	for header, col := range opt.Map {
		if err := CheckMap(header, col); err != nil {
			return nil, fmt.Errorf("--map %s=%s: %w", header, col, err)
		}
		mapped[formats.Key(header)] = byKey[formats.Key(col)]
	}
	ignored := map[string]bool{}
	for _, h := range opt.Ignore {
		if formats.Key(h) == "" {
			return nil, fmt.Errorf("--ignore %q: the header has no letters or digits", h)
		}
		ignored[formats.Key(h)] = true
	}
	return func(column string) string {
		k := formats.Key(column)
		if c, ok := mapped[k]; ok {
			return c
		}
		if ignored[k] {
			return ""
		}
		if c, ok := byKey[k]; ok {
			return c
		}
		return column
	}, nil
}

// CheckMap checks one HEADER=column mapping: the column must exist, and
// the header must have a letter or digit to match by.
func CheckMap(header, col string) error {
	if formats.Key(header) == "" {
		return fmt.Errorf("the header %s has no letters or digits", formats.Quote(header))
	}
	k := formats.Key(col)
	for _, c := range append(KnownColumns(), readOnlyColumns...) {
		if formats.Key(c) == k {
			return nil
		}
	}
	return fmt.Errorf("no column %s (known: %s)", formats.Quote(strings.TrimSpace(col)), strings.Join(KnownColumns(), ", "))
}

// CheckColumns reports header names that no row may have, each once, with
// the closest known column and the flags that map or skip it.
func CheckColumns(file string, cols []string) []*formats.Problem {
	return CheckColumnsWritten(file, cols, func(c string) string { return c })
}

// CheckColumnsWritten is CheckColumns quoting each unknown header as
// written(column) gives it: as the admin typed it, not as it is matched.
// The list of known columns is in the first problem only: repeated under
// every unknown header of an HR sheet it buried the headers themselves.
func CheckColumnsWritten(file string, cols []string, written func(column string) string) []*formats.Problem {
	known := KnownColumns()
	var out []*formats.Problem
	for _, col := range cols {
		if slices.Contains(known, col) || slices.Contains(readOnlyColumns, col) {
			continue
		}
		c := written(col)
		hint := ""
		if s := cmp.Or(synonyms[formats.Key(c)], closest(c, known)); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", formats.Quote(s))
		}
		h := c
		if len(h) > 40 {
			h = "HEADER" // the message quotes it already, shortened
		}
		fix := fmt.Sprintf("name its column with --map %s, or skip it with --ignore %s", shellQuote(h+"=COLUMN"), shellQuote(h))
		if formats.Key(c) == "" {
			// --map and --ignore match a header by its letters and digits:
			// they cannot name this one, and would refuse it.
			fix = "the header has no letters or digits, so --map and --ignore cannot name it: rename it in the file"
		}
		out = append(out, &formats.Problem{File: file, Row: 1, Column: formats.Clip(c),
			Msg: fmt.Sprintf("unknown column %s%s: %s", formats.Quote(c), hint, fix)})
	}
	// Validation lists problems by column: the known columns go once,
	// with the unknown header listed first, not again with each other.
	slices.SortStableFunc(out, func(a, b *formats.Problem) int { return cmp.Compare(a.Column, b.Column) })
	if len(out) > 0 {
		out[0].Msg += fmt.Sprintf(" (columns: %s)", strings.Join(known, ", "))
	}
	return out
}

// synonyms are the headers HR and directory exports use for a column
// whose name is nothing like them, so edit distance cannot suggest it. They
// are only suggested ("did you mean"), never taken: a Phone column may hold
// desk numbers an admin does not want as login ids.
var synonyms = map[string]string{
	"phone": "msisdns", "phonenumber": "msisdns", "mobile": "msisdns", "mobilephone": "msisdns",
	"mobilenumber": "msisdns", "cell": "msisdns", "cellphone": "msisdns", "telephone": "msisdns",
	"tel": "msisdns", "mobil": "msisdns", "handy": "msisdns", "telefon": "msisdns", "telefono": "msisdns",
	"telephonenumber": "msisdns", "portable": "msisdns",
	"name": "displayname", "fullname": "displayname", "username": "user_id", "login": "user_id",
	"mail": "emails", "emailaddress": "emails", "mailaddress": "emails",
	"pass": "password", "pwd": "password", "kennwort": "password", "passwort": "password",
	"isadmin": "admin", "administrator": "admin", "matrixid": "user_id", "mxid": "user_id",
}

// closest returns the known column nearest to c by edit distance of their
// letters and digits, or "" when none is near enough to be a likely typo.
func closest(c string, known []string) string {
	k := formats.Key(c)
	if len(k) > 64 {
		return "" // no column is that long; and the distance is quadratic
	}
	best, dist := "", len(k)/3+1
	for _, name := range known {
		if d := formats.EditDistance(k, formats.Key(name)); d < dist || d == dist && best == "" && d <= 2 {
			best, dist = name, d
		}
	}
	return best
}

// shellQuote puts s in single quotes for a POSIX shell, so that a
// suggested flag pastes as it is whatever the header holds (a quote, a $).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
