package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestScanRules is the scanner's rules, one case a rule: which lines fn
// sees, which line comes back torn, and which files are refused.
func TestScanRules(t *testing.T) {
	t.Parallel()
	const (
		run  = `{"type":"run","tool":"synbatch"}` + "\n"
		row2 = `{"type":"row","row":2,"key":"a","outcome":"done"}` + "\n"
		row3 = `{"type":"row","row":3,"key":"b","outcome":"done"}`
	)
	// records accepts what synbatch writes: JSON without "bad" in it.
	records := func(line []byte) error {
		if strings.Contains(string(line), "bad") {
			return errors.New("not a record")
		}
		var v map[string]any
		return json.Unmarshal(line, &v)
	}
	for _, c := range []struct {
		name     string
		text     string
		seen     []string // the lines fn is given
		torn     string   // the tail Scan returns ("" for none)
		tornAt   int64
		tornLine int
		err      error  // the error kind wanted
		errHas   string // and what it must name
	}{
		{name: "an empty file", text: ""},
		{name: "a header only", text: run, seen: []string{run}},
		{name: "a header torn by a kill", text: `{"type":"ru`, torn: `{"type":"ru`, tornLine: 1},
		{name: "whole records", text: run + row2 + row3 + "\n", seen: []string{run, row2, row3}},
		{name: "a torn last line", text: run + row2 + `{"type":"row","row":3,"ke`,
			seen: []string{run, row2}, torn: `{"type":"row","row":3,"ke`, tornAt: int64(len(run + row2)), tornLine: 3},
		{name: "a last line that parses but has no newline", text: run + row2 + row3,
			seen: []string{run, row2}, torn: row3, tornAt: int64(len(run + row2)), tornLine: 3},
		{name: "a whole last line that is not JSON", text: run + row2 + "{\"type\":\"ro\x00\x00\n",
			seen: []string{run, row2}, torn: "{\"type\":\"ro\x00\x00\n", tornAt: int64(len(run + row2)), tornLine: 3},
		{name: "blank lines", text: run + "\n  \n" + row2, seen: []string{run, row2}},
		{name: "damage in the middle", text: run + "garbage\n" + row2, seen: []string{run},
			err: ErrDamaged, errHas: fmt.Sprintf("j.jsonl: record at byte %d: invalid character 'g' looking for beginning of value (line 2)", len(run))},
		{name: "a torn line in the middle", text: run + `{"type":"row","row":3,"ke` + "\n" + row2, seen: []string{run},
			err: ErrDamaged, errHas: "(line 2)"},
		{name: "valid JSON refused on the last line", text: run + row2 + `{"type":"row","outcome":"bad"}` + "\n", seen: []string{run, row2},
			err: ErrDamaged, errHas: fmt.Sprintf("record at byte %d: not a record (line 3)", len(run+row2))},
		{name: "a first line that is not a header", text: "remember the milk\n", err: ErrForeign, errHas: "j.jsonl does not begin with a synbatch run record"},
		{name: "a header of another tool", text: `{"type":"run","tool":"other"}` + "\n" + row2, err: ErrForeign},
		{name: "a row before any header", text: row2 + run, err: ErrForeign},
		{name: "a blank first line", text: "\n" + run, err: ErrForeign},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var seen []string
			tail, err := Scan(strings.NewReader(c.text), "j.jsonl", func(line []byte) error {
				if err := records(line); err != nil {
					return err
				}
				seen = append(seen, string(line))
				return nil
			})
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("err = %v, want %v naming %q", err, c.err, c.errHas)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			want := make([]string, len(c.seen))
			for i, s := range c.seen {
				want[i] = strings.TrimSpace(s)
			}
			if fmt.Sprintf("%q", seen) != fmt.Sprintf("%q", want) {
				t.Errorf("fn saw %q, want %q", seen, want)
			}
			switch {
			case c.torn == "" && tail != nil:
				t.Errorf("torn tail %+v, want none", tail)
			case c.torn != "" && tail == nil:
				t.Errorf("no torn tail, want %q", c.torn)
			case c.torn != "" && (string(tail.Line) != c.torn || tail.Offset != c.tornAt || tail.No != c.tornLine):
				t.Errorf("torn tail %q at byte %d line %d, want %q at %d line %d", tail.Line, tail.Offset, tail.No, c.torn, c.tornAt, c.tornLine)
			}
		})
	}
}

// TestScanReadsLinesOfAnyLength: a record past bufio.Scanner's 64 KiB and
// past Scan's own 1 MiB buffer reaches fn whole, and the lines around it
// are counted right.
func TestScanReadsLinesOfAnyLength(t *testing.T) {
	t.Parallel()
	for _, size := range []int{70 << 10, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			run := `{"type":"run","tool":"synbatch"}` + "\n"
			long := `{"type":"row","row":2,"key":"a","outcome":"failed","error":"` + strings.Repeat("x", size) + `"}`
			text := run + long + "\n" + "garbage\n" + run
			var got []int
			_, err := Scan(strings.NewReader(text), "j", func(line []byte) error {
				var v map[string]any
				if err := json.Unmarshal(line, &v); err != nil {
					return err
				}
				got = append(got, len(line))
				return nil
			})
			want := fmt.Sprintf("record at byte %d: invalid character 'g' looking for beginning of value (line 3)", len(run)+len(long)+1)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want damage naming %q", err, want)
			}
			if len(got) != 2 || got[1] != len(long) {
				t.Fatalf("fn saw lines of %v bytes, want the long one whole (%d)", got, len(long))
			}
		})
	}
}
