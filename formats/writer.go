package formats

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// Writer writes rows of one table. Values are strings, bools, integers,
// []string (lists, joined with ';' in CSV, XLSX and ODS), times (ISO 8601
// in UTC in CSV, a date cell in XLSX and ODS) or any other JSON value (JSONL only). nil
// writes an empty cell.
type Writer interface {
	Write(values []any) error
	// Close finishes the file; the output is complete only if it returns nil.
	Close() error
}

// Escape neutralises a cell a spreadsheet could take for a formula (OWASP
// "CSV injection"): a value starting with = + - @ tab or CR gets a leading
// '. A value that already starts with ' gets one too, and so does a value
// that starts or ends with white space (which the readers otherwise trim),
// so Unescape restores every value exactly and an exported sheet can be
// applied back unchanged.
//
// A spreadsheet may also cut a cell where the file's writer did not: at a
// ';' or ',' (a reader set to the other separator, which then ignores the
// quotes around the cell) or at a line break (a reader that does not take
// quoted line breaks). Each piece after such a cut is guarded too: one that
// starts with = + - @ ' or " gets a ' after the cut ("x;=1+41" is written
// "x;'=1+41"), which Unescape takes off again.
func Escape(v string) string {
	v = guardInner(v, innerGuarded)
	if guarded(v) {
		return "'" + v
	}
	return v
}

// Unescape undoes Escape (and escapeText). The CSV and XLSX readers apply
// it to every cell, and keep a cell it changes exactly as it is, untrimmed.
func Unescape(v string) string {
	if len(v) > 1 && v[0] == '\'' && guarded(v[1:]) {
		v = v[1:]
	}
	return unguardInner(v)
}

// cuts are where a spreadsheet may start a new cell inside one of ours.
const cuts = ";,\t\r\n"

// innerGuarded reports whether the piece after a cut needs a ': it would
// start a formula, or it starts with the guard itself (or a quote, which
// would open a quoted cell whose text then starts a formula).
func innerGuarded(c byte) bool { return strings.IndexByte("=+-@'\"", c) >= 0 }

// guardInner puts a ' after each cut whose next byte need says so.
func guardInner(v string, need func(byte) bool) string {
	if !strings.ContainsAny(v, cuts) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		b.WriteByte(v[i])
		if strings.IndexByte(cuts, v[i]) >= 0 && i+1 < len(v) && need(v[i+1]) {
			b.WriteByte('\'')
		}
	}
	return b.String()
}

// unguardInner takes off the ' guardInner put after a cut: one followed by
// a byte innerGuarded names.
func unguardInner(v string) string {
	if !strings.ContainsAny(v, cuts) || !strings.Contains(v, "'") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		b.WriteByte(v[i])
		if strings.IndexByte(cuts, v[i]) >= 0 && i+2 < len(v) && v[i+1] == '\'' && innerGuarded(v[i+2]) {
			i++ // the guard
		}
	}
	return b.String()
}

// guarded reports whether Escape puts a ' before v.
func guarded(v string) bool {
	if v == "" {
		return false
	}
	if strings.ContainsRune("=+-@\t\r'", rune(v[0])) {
		return true
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	return unicode.IsSpace(first) || unicode.IsSpace(last)
}

// JoinList writes a list as one cell: items joined with ';', a ';' or '\'
// inside an item written \; or \\, so SplitList gives every item back (an
// external id holding ';' is one id, not two).
func JoinList(items []string) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(';')
		}
		for j := 0; j < len(it); j++ {
			if it[j] == ';' || it[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(it[j])
		}
	}
	return b.String()
}

// SplitList undoes JoinList: it cuts v at each ';' not written \;, and
// reads \; and \\ as ';' and '\'. Any other '\' is kept as it is, so a
// hand-written list with a backslash in it reads as typed.
func SplitList(v string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && (v[i+1] == ';' || v[i+1] == '\\'):
			i++
			b.WriteByte(v[i])
		case v[i] == ';':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(v[i])
		}
	}
	return append(out, b.String())
}

// cellText is a value as a CSV cell, escaped.
func cellText(v any) string { return cellTextWith(v, Escape) }

// cellTextWith is a value as a spreadsheet cell, escaped by esc.
func cellTextWith(v any, esc func(string) string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return esc(x)
	case []string:
		return esc(JoinList(x))
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case fmt.Stringer:
		return esc(x.String())
	}
	b, _ := json.Marshal(v)
	return esc(string(b))
}

// escapeText is Escape for a text cell of a workbook, which no spreadsheet
// evaluates: a value that starts like a formula is shown as it is. The '
// stays only where the reader needs it to give the value back exactly: a
// value that starts with ' itself, or starts or ends with white space
// (which the reader otherwise trims).
func escapeText(v string) string {
	if v == "" {
		return v
	}
	// Unescape would take a ' after a cut for a guard: double it.
	v = guardInner(v, func(c byte) bool { return c == '\'' })
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if first == '\'' || unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "'" + v
	}
	return v
}

// CheckOut says whether Create can write path: an extension it knows and a
// folder that exists. Exports call it before their first request, so a
// typo in --out costs nothing but the message.
func CheckOut(path string) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv", ".tsv", ".jsonl", ".ndjson", ".xlsx", ".ods":
	default:
		return fmt.Errorf("%s: unknown output format %q (want .csv, .tsv, .xlsx, .ods or .jsonl)", path, ext)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: the folder %s does not exist", path, filepath.Dir(path))
	}
	// Checked again at the rename; here so a planted link costs no request.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return &nofollow.LinkError{Op: "replace", Path: path}
	}
	return nil
}

// Create makes a writer for path by its extension (.csv, .tsv, .xlsx, .ods,
// .jsonl); columns is the header. The file is written under a temporary
// name and renamed into place by Close, so a reader never sees half a file.
func Create(path string, columns []string) (Writer, error) {
	if err := CheckOut(path); err != nil {
		return nil, err
	}
	ext := strings.ToLower(filepath.Ext(path))
	tmp, err := nofollow.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	a := &atomicFile{f: tmp, path: path}
	switch ext {
	case ".xlsx":
		return newXLSXWriter(a, columns)
	case ".ods":
		return newODSWriter(a, columns)
	case ".jsonl", ".ndjson":
		return &jsonlWriter{out: a, w: a.f, columns: columns}, nil
	}
	sep := ','
	if ext == ".tsv" {
		sep = '\t'
	}
	return newCSVWriter(a, a.f, sep, columns)
}

// NewStreamWriter writes CSV or JSONL (format "csv" or "jsonl") to w, for stdout.
func NewStreamWriter(w io.Writer, format string, columns []string) (Writer, error) {
	switch format {
	case "csv":
		return newCSVWriter(nil, w, ',', columns)
	case "jsonl":
		return &jsonlWriter{w: w, columns: columns}, nil
	}
	return nil, fmt.Errorf("format %q: want csv or jsonl", format)
}

// atomicFile is a temporary file renamed over its target on success.
type atomicFile struct {
	f    *os.File
	path string
}

func (a *atomicFile) commit() error {
	if err := a.f.Sync(); err != nil {
		a.abort()
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := a.f.Close(); err != nil {
		os.Remove(a.f.Name())
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := nofollow.Rename(a.f.Name(), a.path); err != nil {
		os.Remove(a.f.Name())
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

func (a *atomicFile) abort() {
	a.f.Close()
	os.Remove(a.f.Name())
}

type csvWriter struct {
	out *atomicFile // nil for a stream
	w   *csv.Writer
	row []string
}

func newCSVWriter(out *atomicFile, w io.Writer, sep rune, columns []string) (*csvWriter, error) {
	cw := &csvWriter{out: out, w: csv.NewWriter(w)}
	cw.w.Comma = sep
	if err := cw.w.Write(columns); err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	return cw, nil
}

func (c *csvWriter) Write(values []any) error {
	c.row = c.row[:0]
	for _, v := range values {
		c.row = append(c.row, cellText(v))
	}
	return c.w.Write(c.row)
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		if c.out != nil {
			c.out.abort()
		}
		return fmt.Errorf("write csv: %w", err)
	}
	if c.out == nil {
		return nil
	}
	return c.out.commit()
}

type jsonlWriter struct {
	out     *atomicFile
	w       io.Writer
	columns []string
}

func (j *jsonlWriter) Write(values []any) error {
	obj := make(map[string]any, len(values))
	for i, v := range values {
		if v == nil || v == "" {
			continue
		}
		if l, ok := v.([]string); ok && len(l) == 0 {
			continue
		}
		obj[j.columns[i]] = v
	}
	b, err := json.Marshal(orderedObject{keys: j.columns, m: obj})
	if err != nil {
		return fmt.Errorf("encode jsonl: %w", err)
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

func (j *jsonlWriter) Close() error {
	if j.out == nil {
		return nil
	}
	return j.out.commit()
}

// orderedObject encodes a map with its keys in column order, so JSONL
// output is as readable as the spreadsheet.
type orderedObject struct {
	keys []string
	m    map[string]any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, k := range o.keys {
		v, ok := o.m[k]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// xlsxWriter streams rows with excelize's StreamWriter: memory stays flat.
type xlsxWriter struct {
	out       *atomicFile
	f         *excelize.File
	sw        *excelize.StreamWriter
	next      int
	dateStyle int // shows a time as an ISO 8601 date and time
}

func newXLSXWriter(out *atomicFile, columns []string) (*xlsxWriter, error) {
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		out.abort()
		return nil, fmt.Errorf("xlsx: %w", err)
	}
	x := &xlsxWriter{out: out, f: f, sw: sw, next: 1}
	iso := "yyyy-mm-dd hh:mm:ss"
	if x.dateStyle, err = f.NewStyle(&excelize.Style{CustomNumFmt: &iso}); err != nil {
		out.abort()
		return nil, fmt.Errorf("xlsx: %w", err)
	}
	head := make([]any, len(columns))
	for i, c := range columns {
		head[i] = c
	}
	if err := x.writeRow(head); err != nil {
		out.abort()
		return nil, err
	}
	return x, nil
}

func (x *xlsxWriter) writeRow(cells []any) error {
	cell, _ := excelize.CoordinatesToCellName(1, x.next)
	x.next++
	if err := x.sw.SetRow(cell, cells); err != nil {
		return fmt.Errorf("xlsx row %d: %w", x.next-1, err)
	}
	return nil
}

// Write stores every value as a text cell (numbers too, so phone numbers
// keep their digits), which is never a formula: see escapeText.
func (x *xlsxWriter) Write(values []any) error {
	cells := make([]any, len(values))
	for i, v := range values {
		switch v.(type) {
		case int, int64:
			cells[i] = v // timestamps stay numbers for sorting
		case time.Time:
			cells[i] = excelize.Cell{StyleID: x.dateStyle, Value: v.(time.Time).UTC()}
		default:
			cells[i] = cellTextWith(v, escapeText)
		}
	}
	return x.writeRow(cells)
}

func (x *xlsxWriter) Close() error {
	if err := x.sw.Flush(); err != nil {
		x.out.abort()
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := x.f.Write(x.out.f); err != nil {
		x.out.abort()
		return fmt.Errorf("xlsx: %w", err)
	}
	x.f.Close()
	return x.out.commit()
}
