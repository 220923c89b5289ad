package formats

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestJSONL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int // 0: the real limit
		cols    []string
		want    []string
	}{
		{
			name: "strings",
			in:   `{"user_id": "alice", "displayname": " Alice "}` + "\n" + `{"user_id": "@bob:synbatch.test"}`,
			cols: []string{"user_id", "displayname"},
			want: []string{"1 displayname= Alice  user_id=alice", "2 user_id=@bob:synbatch.test"},
		},
		{
			name: "numbers keep their literal digits",
			in:   `{"msisdns": 447700900001, "big": 12345678901234567890, "exp": 4.477e11, "neg": -2}`,
			want: []string{"1 big=12345678901234567890 exp=4.477e11 msisdns=447700900001 neg=-2"},
		},
		{
			name: "booleans",
			in:   `{"admin": true, "deactivated": false}`,
			want: []string{"1 admin=true deactivated=false"},
		},
		{
			name: "null and empty values are omitted",
			in:   `{"user_id": "alice", "displayname": null, "password": "", "emails": [], "ids": [null, ""]}`,
			cols: []string{"user_id", "displayname", "password", "emails", "ids"},
			want: []string{"1 user_id=alice"},
		},
		{
			name: "an object of empty values is a blank row",
			in:   `{"user_id": null}` + "\n" + `{"user_id": "bob"}`,
			want: []string{"2 user_id=bob"},
		},
		{
			name: "arrays of strings and numbers",
			in:   `{"emails": ["a@example.org", "b@example.org"], "msisdns": [447700900001, "447700900002"], "x": [true]}`,
			want: []string{"1 emails=[a@example.org|b@example.org] msisdns=[447700900001|447700900002] x=[true]"},
		},
		{
			name: "external ids",
			in: `{"external_ids": [{"auth_provider": "oidc", "external_id": "alice-sub-1"}, {"Auth_Provider": "saml", "external_id": 42}]}` + "\n" +
				`{"external_ids": {"auth_provider": "oidc", "external_id": "bob-sub-2"}}`,
			want: []string{"1 external_ids=[oidc:alice-sub-1|saml:42]", "2 external_ids=[oidc:bob-sub-2]"},
		},
		{
			name: "nested object",
			in:   `{"user_id": "alice", "Profile": {"colour": "blue"}}` + "\n" + `{"user_id": "bob"}`,
			want: []string{
				`! m.jsonl:1:Profile: unexpected key "colour": only {"auth_provider": …, "external_id": …} objects are supported`,
				"2 user_id=bob",
			},
		},
		{
			name: "bad external ids",
			in: `{"external_ids": [{"auth_provider": "oidc"}]}` + "\n" +
				`{"external_ids": [{"auth_provider": "oidc", "external_id": {"x": 1}}]}` + "\n" +
				`{"external_ids": [{"auth_provider": "a:b", "external_id": "x"}]}` + "\n" +
				`{"external_ids": [["oidc", "x"]]}`,
			want: []string{
				`! m.jsonl:1:external_ids: entry 1: only {"auth_provider": …, "external_id": …} objects are supported`,
				`! m.jsonl:2:external_ids: entry 1: "external_id" must be a string: only {"auth_provider": …, "external_id": …} objects are supported`,
				`! m.jsonl:3:external_ids: entry 1: auth_provider "a:b" contains ':'`,
				"! m.jsonl:4:external_ids: entry 1: nested lists are not supported",
			},
		},
		{
			name: "keys are normalised like headers",
			in:   `{" User_ID ": "alice", "EMAILS": ["a@example.org"]}`,
			cols: []string{"user_id", "emails"},
			want: []string{"1 emails=[a@example.org] user_id=alice"},
		},
		{
			name: "duplicate and empty keys",
			in:   `{"email": "a", "Email": "b"}` + "\n" + `{" ": 1, "a": 2}`,
			want: []string{
				`! m.jsonl:1:Email: key "email" appears twice`,
				"! m.jsonl:2: the object has an empty key",
			},
		},
		{
			name: "lines that are not objects",
			in:   "[1, 2]\n\"alice\"\n42\nnull\n{\"ok\": 1}\n",
			want: []string{
				"! m.jsonl:1: line is not a JSON object",
				"! m.jsonl:2: line is not a JSON object",
				"! m.jsonl:3: line is not a JSON object",
				"! m.jsonl:4: line is not a JSON object",
				"5 ok=1",
			},
		},
		{
			name: "bad lines",
			in:   "not json\n{\"a\": 1,}\n{\"a\":\n{\"a\": 1} {\"b\": 2}\n{\"a\": \"caf\xe9\"}\n{\"a\": 1}\n",
			want: []string{
				"! m.jsonl:1: invalid JSON: invalid character 'o' in literal null (expecting 'u')",
				"! m.jsonl:2: invalid JSON: invalid character '}' looking for beginning of object key string",
				"! m.jsonl:3:a: invalid JSON: the line ends in the middle of a value",
				"! m.jsonl:4: unexpected data after the JSON object",
				"! m.jsonl:5: line is not valid UTF-8",
				"6 a=1",
			},
		},
		{
			name: "blank lines keep line numbers",
			in:   "\n{\"a\": 1}\n   \n\t\n{\"a\": 2}\n\n",
			want: []string{"2 a=1", "5 a=2"},
		},
		{
			name: "CRLF and BOM",
			in:   "\xEF\xBB\xBF{\"a\": \"x\"}\r\n{\"a\": \"y\"}\r\n",
			want: []string{"1 a=x", "2 a=y"},
		},
		{
			name:    "too-long line is a problem and reading goes on",
			in:      `{"a": 1}` + "\n" + `{"a": "` + strings.Repeat("x", 100) + `"}` + "\n" + `{"a": 3}` + "\n",
			maxLine: 32,
			want:    []string{"1 a=1", "! m.jsonl:2: line is longer than 32 bytes", "3 a=3"},
		},
		{
			name:    "too-long last line without a newline",
			in:      `{"a": 1}` + "\n" + strings.Repeat(" ", 100),
			maxLine: 32,
			want:    []string{"1 a=1", "! m.jsonl:2: line is longer than 32 bytes"},
		},
		{
			name:    "line just under the limit",
			in:      `{"a": "` + strings.Repeat("x", 22) + `"}` + "\n" + `{"b": 2}`,
			maxLine: 32,
			want:    []string{"1 a=" + strings.Repeat("x", 22), "2 b=2"},
		},
		{
			name:    "several too-long lines",
			in:      strings.Repeat(strings.Repeat("y", 70)+"\n", 3) + `{"a": 4}`,
			maxLine: 32,
			want: []string{
				"! m.jsonl:1: line is longer than 32 bytes",
				"! m.jsonl:2: line is longer than 32 bytes",
				"! m.jsonl:3: line is longer than 32 bytes",
				"4 a=4",
			},
		},
		{
			name: "empty file",
			in:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxLine := tt.maxLine
			if maxLine == 0 {
				maxLine = maxJSONLLine
			}
			r := newJSONLReader(strings.NewReader(tt.in), "m.jsonl", maxLine)
			got := events(t, r)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if tt.cols != nil && !slices.Equal(r.Columns(), tt.cols) {
				t.Errorf("Columns() = %q, want %q", r.Columns(), tt.cols)
			}
		})
	}
}

func TestJSONLColumnsGrow(t *testing.T) {
	r := newJSONLReader(strings.NewReader(`{"b": 1, "a": 2}`+"\n"+`{"c": 3, "A": 4}`), "m.jsonl", maxJSONLLine)
	if got := r.Columns(); len(got) != 0 {
		t.Fatalf("Columns() before reading = %q", got)
	}
	for _, want := range [][]string{{"b", "a"}, {"b", "a", "c"}} {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if got := r.Columns(); !slices.Equal(got, want) {
			t.Errorf("Columns() = %q, want %q", got, want)
		}
	}
}

func TestJSONLField(t *testing.T) {
	r := newJSONLReader(strings.NewReader(`{"Emails": ["a@example.org", "b@example.org"], "Admin": true}`), "m.jsonl", maxJSONLLine)
	row, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	emails := row.Fields["emails"]
	if emails.Column != "Emails" || emails.Value != "a@example.org;b@example.org" || !slices.Equal(emails.List, []string{"a@example.org", "b@example.org"}) {
		t.Errorf("emails = %+v", emails)
	}
	if admin := row.Fields["admin"]; admin.Column != "Admin" || admin.Value != "true" || admin.List != nil {
		t.Errorf("admin = %+v", admin)
	}
}

// TestJSONLLongLineLimit checks the real 16 MiB limit through Open.
func TestJSONLLongLineLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 16 MiB line")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	long := `{"a": "` + strings.Repeat("x", maxJSONLLine) + `"}`
	// A line just under the limit, of values under the cell limit.
	var fits, fitsRow strings.Builder
	fitsRow.WriteString("3")
	fits.WriteString("{")
	for i := range maxJSONLLine / MaxCell {
		v := strings.Repeat("y", MaxCell-64)
		if i > 0 {
			fits.WriteString(",")
		}
		fmt.Fprintf(&fits, `"k%02d":"%s"`, i, v)
		fmt.Fprintf(&fitsRow, " k%02d=%s", i, v)
	}
	fits.WriteString("}")
	content := `{"a": 1}` + "\n" + long + "\n" + fits.String() + "\n" + `{"a": 4}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "big.jsonl"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open("big.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := events(t, r)
	want := []string{"1 a=1", "! big.jsonl:2: line is longer than 16 MiB", fitsRow.String(), "4 a=4"}
	if !slices.Equal(got, want) {
		for i := range got {
			got[i] = got[i][:min(len(got[i]), 60)]
		}
		t.Errorf("got %q (truncated)", got)
	}
}
