package formats

import (
	"slices"
	"strings"
	"testing"
)

func TestCSV(t *testing.T) {
	tests := []struct {
		name string
		in   string
		sep  rune // 0: detect
		cols []string
		want []string
	}{
		{
			name: "comma",
			in:   "user_id,displayname\nalice,Alice\n@bob:synbatch.test,Bob\n",
			cols: []string{"user_id", "displayname"},
			want: []string{"2 displayname=Alice user_id=alice", "3 displayname=Bob user_id=@bob:synbatch.test"},
		},
		{
			name: "BOM stripped from the first header",
			in:   "\xEF\xBB\xBFuser_id,displayname\nalice,Alice\n",
			cols: []string{"user_id", "displayname"},
			want: []string{"2 displayname=Alice user_id=alice"},
		},
		{
			name: "BOM only",
			in:   "\xEF\xBB\xBF",
			want: []string{"! m.csv:1: the file is empty: no header row"},
		},
		{
			name: "semicolon detected",
			in:   "user_id;displayname;note\nalice;Alice;1,5\n",
			cols: []string{"user_id", "displayname", "note"},
			want: []string{"2 displayname=Alice note=1,5 user_id=alice"},
		},
		{
			name: "tab detected",
			in:   "user_id\tdisplayname\nalice\tAlice Example, PhD\n",
			cols: []string{"user_id", "displayname"},
			want: []string{"2 displayname=Alice Example, PhD user_id=alice"},
		},
		{
			name: "tab keeps empty fields",
			in:   "a\tb\tc\n1\t\t3\n\t2\t\n",
			want: []string{"2 a=1 c=3", "3 b=2"},
		},
		{
			name: "separators inside quotes are not counted",
			in:   "\"a,b,c\";d;e\n1;2;3\n",
			cols: []string{"a,b,c", "d", "e"},
			want: []string{"2 a,b,c=1 d=2 e=3"},
		},
		{
			name: "no separator in a one-column header",
			in:   "user_id\nalice\n",
			want: []string{"2 user_id=alice"},
		},
		{
			name: "tsv forces tab",
			in:   "a,b,c\td\n1,2\t3\n",
			sep:  '\t',
			cols: []string{"a,b,c", "d"},
			want: []string{"2 a,b,c=1,2 d=3"},
		},
		{
			name: "CRLF",
			in:   "a,b\r\n1,2\r\n3,4\r\n",
			want: []string{"2 a=1 b=2", "3 a=3 b=4"},
		},
		{
			name: "quoted newlines keep spreadsheet row numbers",
			in:   "user_id,note\nalice,\"line one\nline two\nline three\"\nbob,\"a\r\nb\"\ncarol,x\n",
			want: []string{"2 note=line one\nline two\nline three user_id=alice", "3 note=a\nb user_id=bob", "4 note=x user_id=carol"},
		},
		{
			name: "quoted newline in the header",
			in:   "\"user\nid\",b\n1,2\n3,4\n",
			cols: []string{"user\nid", "b"},
			want: []string{"2 b=2 user\nid=1", "3 b=4 user\nid=3"},
		},
		{
			name: "blank lines and records are skipped but counted",
			in:   "a,b\n\n1,2\n   \n\n3,4\n,\n , \n5,6\n\n",
			want: []string{"3 a=1 b=2", "6 a=3 b=4", "9 a=5 b=6"},
		},
		{
			name: "blank lines before the header",
			in:   "\n\r\na,b\n1,2\n",
			want: []string{"4 a=1 b=2"},
		},
		{
			name: "cells are trimmed, leading space before a quote allowed",
			in:   "a,b,c\n  1  , \"two, 2\",\t3\t\n",
			want: []string{"2 a=1 b=two, 2 c=3"},
		},
		{
			name: "case and space insensitive headers",
			in:   " User_ID ,DisplayName,  EMAILS\nalice,Alice,a@example.org\n",
			cols: []string{"user_id", "displayname", "emails"},
			want: []string{"2 displayname=Alice emails=a@example.org user_id=alice"},
		},
		{
			name: "too many cells",
			in:   "a,b\n1,2,3\n4,5,,\n6,7\n",
			want: []string{"! m.csv:2: row has 3 cells, header has 2", "3 a=4 b=5", "4 a=6 b=7"},
		},
		{
			name: "fewer cells are empty",
			in:   "a,b,c\n1\n2,3\n",
			want: []string{"2 a=1", "3 a=2 b=3"},
		},
		{
			name: "duplicate header",
			in:   "Email,x,EMAIL \n1,2,3\n",
			cols: []string{"email", "x"},
			want: []string{`! m.csv:1:EMAIL: column "email" appears twice (columns A and C)`, "2 email=1 x=2"},
		},
		{
			name: "empty header cell with data under it",
			in:   "a,,c\n1,,3\n4,5,6\n7,8,9\n",
			cols: []string{"a", "c"},
			want: []string{
				"2 a=1 c=3",
				"! m.csv:1:column B: the header cell is empty but row 3 has data in this column",
				"3 a=4 c=6",
				"4 a=7 c=9",
			},
		},
		{
			name: "trailing empty header cells without data",
			in:   "a,b,,\n1,2,,\n3,,,\n",
			cols: []string{"a", "b"},
			want: []string{"2 a=1 b=2", "3 a=3"},
		},
		{
			name: "invalid UTF-8 in a cell",
			in:   "a,Name\n1,caf\xe9\n2,ok\n",
			want: []string{"! m.csv:2:Name: value is not valid UTF-8 (save the file as UTF-8)", "3 a=2 name=ok"},
		},
		{
			name: "invalid UTF-8 in a header",
			in:   "a,n\xe9e\n1,2\n",
			cols: []string{"a"},
			want: []string{"! m.csv:1:column B: header is not valid UTF-8 (save the file as UTF-8)", "2 a=1"},
		},
		{
			name: "bare quote is a problem and reading goes on",
			in:   "a,b\n1,x\"y\n3,4\n",
			want: []string{`! m.csv:2: invalid CSV on line 2, character 4: bare " in non-quoted-field`, "3 a=3 b=4"},
		},
		{
			name: "unterminated quote",
			in:   "a,b\n1,2\n3,\"open\n4,5\n",
			want: []string{"2 a=1 b=2", `! m.csv:3: invalid CSV on line 4, character 5: extraneous or missing " in quoted-field`},
		},
		{
			name: "empty file",
			in:   "",
			want: []string{"! m.csv:1: the file is empty: no header row"},
		},
		{
			name: "header only",
			in:   "a,b\n",
			cols: []string{"a", "b"},
		},
		{
			name: "broken header",
			in:   "a,\"b\nc,d\n",
			want: []string{`! m.csv:1: invalid CSV on line 2, character 5: extraneous or missing " in quoted-field`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newCSVReader(strings.NewReader(tt.in), "m.csv", tt.sep)
			if err != nil {
				t.Fatal(err)
			}
			if tt.cols != nil && !slices.Equal(r.Columns(), tt.cols) {
				t.Errorf("Columns() = %q, want %q", r.Columns(), tt.cols)
			}
			if got := events(t, r); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCSVFieldColumn(t *testing.T) {
	r, err := newCSVReader(strings.NewReader("\xEF\xBB\xBF  User_ID  ,Display Name\nalice,Alice\n"), "m.csv", 0)
	if err != nil {
		t.Fatal(err)
	}
	row, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Field{
		"user_id":      {Column: "User_ID", Value: "alice"},
		"display name": {Column: "Display Name", Value: "Alice"},
	}
	for k, w := range want {
		if got := row.Fields[k]; got.Column != w.Column || got.Value != w.Value || got.List != nil {
			t.Errorf("Fields[%q] = %+v, want %+v", k, got, w)
		}
	}
}

func TestCSVUTF16(t *testing.T) {
	for _, bom := range []string{"\xFF\xFE", "\xFE\xFF"} {
		_, err := newCSVReader(strings.NewReader(bom+"a\x00,\x00"), "m.csv", 0)
		if err == nil || !strings.Contains(err.Error(), "UTF-16") {
			t.Errorf("BOM %q: error = %v, want a UTF-16 error", bom, err)
		}
	}
}

func TestDetectSeparator(t *testing.T) {
	tests := []struct {
		line string
		want rune
	}{
		{"a,b,c", ','},
		{"a;b;c", ';'},
		{"a\tb\tc", '\t'},
		{"a;b,c;d", ';'},
		{"a,b;c,d", ','},
		{"a;b\tc", ';'},
		{"a\tb,c\td", '\t'},
		{"\"x;y;z\",a,b", ','},
		{"single", ','},
		{"a,b\nc;d;e;f", ','},
		{"\"multi\nline;;;\",a", ','},
	}
	for _, tt := range tests {
		r, err := newCSVReader(strings.NewReader(tt.line), "m.csv", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.cr.Comma; got != tt.want {
			t.Errorf("separator for %q = %q, want %q", tt.line, got, tt.want)
		}
	}
}
