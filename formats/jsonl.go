package formats

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxJSONLLine is the longest JSONL line read; a longer line is a problem
// and reading goes on with the next one.
const maxJSONLLine = 16 << 20

// jsonlReader reads JSON Lines manifests: one object per line.
type jsonlReader struct {
	name    string
	closer  io.Closer
	sc      *bufio.Scanner
	maxLine int
	line    int
	columns []string
	known   map[string]bool
	// skipping is set while the split function discards the rest of a line
	// that did not fit; tooLong marks the token it then returns.
	skipping, tooLong bool
	q                 queue
}

// openJSONL opens a JSONL file.
func openJSONL(path string) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	r := newJSONLReader(f, path, maxJSONLLine)
	r.closer = f
	return r, nil
}

// newJSONLReader reads lines of at most maxLine bytes from src; name is used
// in problems and errors.
func newJSONLReader(src io.Reader, name string, maxLine int) *jsonlReader {
	r := &jsonlReader{name: name, maxLine: maxLine, known: make(map[string]bool)}
	r.sc = bufio.NewScanner(src)
	r.sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	r.sc.Split(r.split)
	return r
}

// split is bufio.ScanLines, except that a line longer than maxLine is
// skipped and returned as an empty token with tooLong set, instead of
// stopping the scanner with bufio.ErrTooLong.
func (r *jsonlReader) split(data []byte, atEOF bool) (int, []byte, error) {
	r.tooLong = false
	if atEOF && len(data) == 0 {
		if r.skipping {
			// The file ended inside the long line.
			r.skipping, r.tooLong = false, true
			return 0, []byte{}, nil
		}
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		if r.skipping {
			r.skipping, r.tooLong = false, true
			return i + 1, data[:0], nil
		}
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	switch {
	case r.skipping && atEOF:
		r.skipping, r.tooLong = false, true
		return len(data), data[:0], nil
	case r.skipping:
		return len(data), nil, nil
	case len(data) >= r.maxLine:
		// The scanner's buffer is full: drop what it holds and the rest of
		// the line with it.
		r.skipping = true
		return len(data), nil, nil
	case atEOF:
		return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
	}
	return 0, nil, nil
}

// Columns returns the normalised keys seen so far, in order of first
// appearance.
func (r *jsonlReader) Columns() []string { return slices.Clone(r.columns) }

// Next returns the next row, a *Problem, io.EOF or a fatal error.
func (r *jsonlReader) Next() (Row, error) {
	return r.q.next(r.fill)
}

// fill reads lines until it has queued a row, a problem or the end.
func (r *jsonlReader) fill() {
	for r.sc.Scan() {
		r.line++
		if r.tooLong {
			r.q.problems = append(r.q.problems, r.problem("", fmt.Sprintf("line is longer than %s", byteSize(r.maxLine))))
			return
		}
		line := r.sc.Bytes()
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte(utf8BOM))
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		row, problems := r.parse(line)
		if len(problems) > 0 {
			r.q.problems = append(r.q.problems, problems...)
			return
		}
		if len(row.Fields) > 0 {
			r.q.row, r.q.hasRow = row, true
			return
		}
		// An object with only null or empty values is a blank row.
	}
	if err := r.sc.Err(); err != nil {
		r.q.fatal(fmt.Errorf("read manifest %s: line %d: %w", r.name, r.line+1, err))
		return
	}
	r.q.finish()
}

// problem returns a problem on the current line.
func (r *jsonlReader) problem(column, msg string) *Problem {
	return &Problem{File: r.name, Row: r.line, Column: column, Msg: msg}
}

// parse decodes one line holding a JSON object.
func (r *jsonlReader) parse(line []byte) (Row, []error) {
	if !utf8.Valid(line) {
		return Row{}, []error{r.problem("", "line is not valid UTF-8")}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return Row{}, []error{r.problem("", "invalid JSON: "+jsonErr(err))}
	}
	if tok != json.Delim('{') {
		return Row{}, []error{r.problem("", "line is not a JSON object")}
	}
	fields := make(map[string]Field)
	seen := make(map[string]bool)
	var problems []error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Row{}, append(problems, r.problem("", "invalid JSON: "+jsonErr(err)))
		}
		// Object keys are always strings. The key names the column in
		// messages: a long one is shown shortened.
		key := strings.TrimSpace(tok.(string))
		name := normalise(key)
		key = Clip(key)
		var v any
		if err := dec.Decode(&v); err != nil {
			return Row{}, append(problems, r.problem(key, "invalid JSON: "+jsonErr(err)))
		}
		if name == "" {
			problems = append(problems, r.problem("", "the object has an empty key"))
			continue
		}
		if !r.known[name] {
			r.known[name] = true
			r.columns = append(r.columns, name)
		}
		if seen[name] {
			problems = append(problems, r.problem(key, fmt.Sprintf("key %s appears twice", Quote(name))))
			continue
		}
		seen[name] = true
		f, keep, msg := jsonField(v)
		if msg != "" {
			problems = append(problems, r.problem(key, msg))
			continue
		}
		if keep {
			f.Column = key
			fields[name] = f
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Row{}, append(problems, r.problem("", "invalid JSON: "+jsonErr(err)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Row{}, append(problems, r.problem("", "unexpected data after the JSON object"))
	}
	if len(problems) > 0 {
		return Row{}, problems
	}
	return Row{Num: r.line, Fields: fields}, nil
}

// jsonErr describes a decoding error; the decoder reports a truncated line
// as a bare io.ErrUnexpectedEOF.
func jsonErr(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the line ends in the middle of a value"
	}
	return err.Error()
}

// jsonField converts one decoded value. keep is false for values that count
// as empty cells (null, "", empty lists); msg describes a value that cannot
// be a cell.
func jsonField(v any) (f Field, keep bool, msg string) {
	switch v := v.(type) {
	case nil:
		return Field{}, false, ""
	case []any:
		list := make([]string, 0, len(v))
		for i, e := range v {
			s, keep, msg := jsonListEntry(e)
			if msg != "" {
				return Field{}, false, fmt.Sprintf("entry %d: %s", i+1, msg)
			}
			if keep {
				list = append(list, s)
			}
		}
		if len(list) == 0 {
			return Field{}, false, ""
		}
		return Field{Value: strings.Join(list, ";"), List: list}, true, ""
	case map[string]any:
		// A single external id, without the list around it.
		s, msg := externalID(v)
		if msg == "" {
			msg = checkText(s)
		}
		if msg != "" {
			return Field{}, false, msg
		}
		return Field{Value: s, List: []string{s}}, true, ""
	}
	s, keep := jsonScalar(v)
	if !keep {
		return Field{}, false, ""
	}
	if msg := checkText(s); msg != "" {
		return Field{}, false, msg
	}
	return Field{Value: s}, true, ""
}

// jsonListEntry converts one entry of a JSON array.
func jsonListEntry(e any) (s string, keep bool, msg string) {
	switch e := e.(type) {
	case []any:
		return "", false, "nested lists are not supported"
	case map[string]any:
		s, msg = externalID(e)
	default:
		s, keep = jsonScalar(e)
		if !keep {
			return "", false, ""
		}
	}
	if msg == "" {
		msg = checkText(s)
	}
	return s, msg == "", msg
}

// jsonScalar renders a string, number or boolean; null and "" are empty.
func jsonScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// externalID renders {"auth_provider": P, "external_id": I} as "P:I", the
// form a spreadsheet cell uses, or explains why the object is not one.
func externalID(m map[string]any) (string, string) {
	const want = `only {"auth_provider": …, "external_id": …} objects are supported`
	var provider, id string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var s string
		switch v := m[k].(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		default:
			return "", fmt.Sprintf("%s must be a string: %s", Quote(k), want)
		}
		switch normalise(k) {
		case "auth_provider":
			provider = s
		case "external_id":
			id = s
		default:
			return "", fmt.Sprintf("unexpected key %s: %s", Quote(k), want)
		}
	}
	switch {
	case provider == "" || id == "":
		return "", want
	case strings.Contains(provider, ":"):
		return "", fmt.Sprintf("auth_provider %s contains ':'", Quote(provider))
	}
	return provider + ":" + id, ""
}

// byteSize renders a limit for messages.
func byteSize(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Close closes the underlying file.
func (r *jsonlReader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}
