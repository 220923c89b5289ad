package integration

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// regToken reads one registration token straight from the server.
func (e *env) regToken(t *testing.T, token string) (found bool, usesAllowed, expiryTime *int64) {
	t.Helper()
	var out struct {
		UsesAllowed *int64 `json:"uses_allowed"`
		ExpiryTime  *int64 `json:"expiry_time"`
	}
	status, body := e.call(t, http.MethodGet, "/_synapse/admin/v1/registration_tokens/"+url.PathEscape(token), e.adminToken(t), nil, &out)
	switch status {
	case 200:
		return true, out.UsesAllowed, out.ExpiryTime
	case 404:
		return false, nil, nil
	}
	t.Fatalf("GET registration token: %d %s", status, body)
	return
}

// TestRegistrationTokensCreatedAndExported: a manifest of a named token
// and two generated ones makes the three tokens with their uses and
// expiry (read back with GET); the generated ones are written only to the
// 0600 --passwords-out file, never to the journal or the output; export
// registration-tokens lists all three, and applying the export changes
// nothing.
func TestRegistrationTokensCreatedAndExported(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	named := "tok-" + p
	expiry := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	writeFile(t, dir, "tokens.csv", fmt.Sprintf("action,token,uses_allowed,expiry_time\n"+
		"registration-token,%s,3,2031-01-01\nregistration-token,,1,\nregistration-token,,5,%d\n", named, expiry))
	r := e.synbatch(t, dir, "apply", "tokens.csv", "--passwords-out", "secrets.csv")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	if found, uses, exp := e.regToken(t, named); !found || uses == nil || *uses != 3 || exp == nil || *exp != expiry {
		t.Fatalf("named token: found %v, uses %v, expiry %v", found, uses, exp)
	}
	fi, err := os.Stat(filepath.Join(dir, "secrets.csv"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v %v", fi, err)
	}
	f, _ := os.Open(filepath.Join(dir, "secrets.csv"))
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 3 {
		t.Fatalf("secrets file: %d records %v", len(recs), err)
	}
	journal := readFile(t, filepath.Join(dir, "tokens.csv.journal.jsonl"))
	var uses []int64
	var generated []string
	for _, rec := range recs[1:] {
		tok := rec[1]
		generated = append(generated, tok)
		found, u, exp := e.regToken(t, tok)
		if !found || u == nil {
			t.Fatalf("generated token of %s: found %v, uses %v", rec[0], found, u)
		}
		uses = append(uses, *u)
		if *u == 5 && (exp == nil || *exp != expiry) || *u == 1 && exp != nil {
			t.Fatalf("generated token with %d uses expires at %v", *u, exp)
		}
		for where, text := range map[string]string{"journal": journal, "stdout": r.stdout, "stderr": r.stderr} {
			if strings.Contains(text, tok) {
				t.Fatalf("the %s holds a generated token", where)
			}
		}
	}
	if len(uses) != 2 || uses[0]+uses[1] != 6 {
		t.Fatalf("generated tokens' uses: %v, want 1 and 5", uses)
	}

	r = e.synbatch(t, dir, "export", "registration-tokens", "--out", "export.csv")
	if r.code != 0 {
		t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
	}
	exported := readFile(t, filepath.Join(dir, "export.csv"))
	for _, tok := range append(generated, named) {
		if !strings.Contains(exported, "registration-token,"+tok+",") {
			t.Fatalf("the export lacks token %s", tok)
		}
	}
	e.applyAgain(t, dir, "export.csv")
}
