package formats

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"User ID": "userid", "user-id": "userid", "UserID": "userid", "user_id": "userid",
		" Display Name ": "displayname", "E-mail": "email", "Émail 2": "émail2", "--": "",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRenameJSONLDuplicateKey: in JSONL a key can first appear on a later
// line; two keys naming one column are one problem, told before that row,
// and the row keeps the first key's value.
func TestRenameJSONLDuplicateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.jsonl")
	body := `{"user_id":"a","email":"a@x.org"}` + "\n" + `{"user_id":"b","email":"b@x.org","E-mail":"c@x.org"}` + "\n" + `{"user_id":"c","E-mail":"d@x.org"}` + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rr := Rename(r, p, func(c string) string {
		if Key(c) == "email" {
			return "email"
		}
		return c
	})
	var got []string
	for {
		row, err := rr.Next()
		if err == io.EOF {
			break
		}
		var pr *Problem
		if errors.As(err, &pr) {
			got = append(got, "problem "+pr.Msg)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row.Fields["user_id"].Value+" "+row.Fields["email"].Value)
	}
	want := []string{"a a@x.org", `problem columns "email" and "e-mail" are both the column email: keep one, or skip one with --ignore`, "b b@x.org", "c "}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
