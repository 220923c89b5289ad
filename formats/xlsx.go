package formats

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/xuri/excelize/v2"
)

// xlsxOpenOptions are the excelize options for reading a manifest: parts
// larger than 1 MiB (the shared-strings table, big sheets) are unzipped to
// temporary files instead of memory. What still grows is excelize's index
// into a spooled shared-strings table, about 50 bytes per distinct string.
func xlsxOpenOptions() excelize.Options {
	return excelize.Options{UnzipXMLSizeLimit: 1 << 20}
}

// xlsxReader streams one sheet of an XLSX workbook.
type xlsxReader struct {
	name string
	f    *excelize.File
	rows *excelize.Rows
	hdr  *header
	// num is the sheet row number of the last row read. excelize's iterator
	// yields one step per row number, blank rows included (it fills the gaps
	// from the rows' r attributes), so counting steps gives the real number.
	num    int
	tmpDir string // removed on Close when set
	q      queue
}

// openXLSX opens the workbook at path and reads the header of sheet ("" for
// the first sheet). excelize's temporary files go to a directory of their
// own, removed on Close or failure: excelize leaves them behind when opening
// a broken file fails.
func openXLSX(path, sheet string, xopts excelize.Options) (Reader, error) {
	tmp, err := os.MkdirTemp(xopts.TmpDir, "synbatch-xlsx-")
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", path, err)
	}
	xopts.TmpDir = tmp
	f, err := excelize.OpenFile(path, xopts)
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("open manifest %s: %w", path, err)
	}
	r, err := newXLSXReader(f, path, sheet)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	r.tmpDir = tmp
	return r, nil
}

// newXLSXReader takes ownership of f (closing it on error), selects the
// sheet and reads its header.
func newXLSXReader(f *excelize.File, name, sheet string) (*xlsxReader, error) {
	resolved, err := findSheet(f, name, sheet)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	rows, err := f.Rows(resolved)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read manifest %s: sheet %q: %w", name, resolved, err)
	}
	r := &xlsxReader{name: name, f: f, rows: rows}
	r.readHeader()
	return r, nil
}

// findSheet returns the sheet name as stored in the workbook: the first
// sheet when want is "", otherwise the sheet matching want, exactly or
// ignoring case as Excel does.
func findSheet(f *excelize.File, name, want string) (string, error) {
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return "", fmt.Errorf("read manifest %s: the workbook has no sheets", name)
	}
	if want == "" {
		return sheets[0], nil
	}
	for _, s := range sheets {
		if s == want {
			return s, nil
		}
	}
	for _, s := range sheets {
		if strings.EqualFold(s, want) {
			return s, nil
		}
	}
	quoted := make([]string, len(sheets))
	for i, s := range sheets {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "", fmt.Errorf("read manifest %s: no sheet named %q; the workbook has %s", name, want, strings.Join(quoted, ", "))
}

// read returns the trimmed cells of the next non-blank row, or false after
// ending the queue.
func (r *xlsxReader) read() ([]string, bool) {
	for r.rows.Next() {
		r.num++
		// Raw values: formatted ones are slower and lose digits
		// (a phone number under a "0.00E+00" format reads "4.47E+11").
		cells, err := r.rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			r.q.fatal(fmt.Errorf("read manifest %s: row %d: %w", r.name, r.num, err))
			return nil, false
		}
		if !trimCells(cells) {
			continue
		}
		for i, c := range cells {
			cells[i] = integerDigits(c)
		}
		return cells, true
	}
	if err := r.rows.Error(); err != nil {
		r.q.fatal(fmt.Errorf("read manifest %s: row %d: %w", r.name, r.num+1, err))
		return nil, false
	}
	r.q.finish()
	return nil, false
}

// readHeader reads the first non-blank row as the header.
func (r *xlsxReader) readHeader() {
	cells, ok := r.read()
	if !ok {
		if r.q.end == io.EOF {
			r.q.problems = append(r.q.problems, &Problem{File: r.name, Row: 1, Msg: "the sheet is empty: no header row"})
		}
		return
	}
	var problems []error
	r.hdr, problems = newHeader(r.name, r.num, cells)
	r.q.problems = append(r.q.problems, problems...)
}

// Columns returns the distinct header names in file order.
func (r *xlsxReader) Columns() []string {
	if r.hdr == nil {
		return nil
	}
	return slices.Clone(r.hdr.columns)
}

// Next returns the next row, a *Problem, io.EOF or a fatal error.
func (r *xlsxReader) Next() (Row, error) {
	return r.q.next(r.fill)
}

// fill reads rows until it has queued a row, a problem or the end. Cells to
// the right of the header count as cells under an empty header: excelize
// does not report trailing empty header cells, so the two cannot be told
// apart.
func (r *xlsxReader) fill() {
	cells, ok := r.read()
	if !ok {
		return
	}
	row, ok, rowProblems, headerProblems := r.hdr.build(r.num, cells)
	r.q.problems = append(r.q.problems, headerProblems...)
	r.q.problems = append(r.q.problems, rowProblems...)
	if ok {
		r.q.row, r.q.hasRow = row, true
	}
}

// Close releases the sheet iterator and removes excelize's temporary files.
func (r *xlsxReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.rows.Close()
	if ferr := r.f.Close(); err == nil {
		err = ferr
	}
	r.f = nil
	if r.tmpDir != "" {
		if rerr := os.RemoveAll(r.tmpDir); err == nil {
			err = rerr
		}
	}
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
