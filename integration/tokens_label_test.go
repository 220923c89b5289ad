package integration

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabelledContractorTokensNeverInAnyOutput (issue 24's twenty
// contractors, issue 19's class 4): twenty labelled rows make twenty
// tokens on the server, each in the 0600 --tokens-out beside its label.
// Two explicit tokens and a password row run through a proxy that fails
// every read of one token (GET …/registration_tokens/<token>): no token
// and no password appears in any byte synbatch writes — stdout, stderr
// at -vv, --list, the journal, journal summary, the HTML report.
func TestLabelledContractorTokensNeverInAnyOutput(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	target, _ := url.Parse(e.server)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/registration_tokens/") {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	explicit := []string{"tok-" + p + "-Alpha", "tok-" + p + "-Beta"}
	password := "Pw-" + p + "-Secret9"
	var b strings.Builder
	b.WriteString("action,label,uses_allowed,token,user_id,password\n")
	for i := range 20 {
		fmt.Fprintf(&b, "registration-token,contractor%02d.%s@example.org,1,,,\n", i, p)
	}
	fmt.Fprintf(&b, "registration-token,,1,%s,,\nregistration-token,,2,%s,,\n", explicit[0], explicit[1])
	fmt.Fprintf(&b, "create,,,,%s.pw,%s\n", p, password)
	m := writeFile(t, dir, "contractors.csv", b.String())
	jp := filepath.Join(dir, "j.jsonl")
	tokensOut := filepath.Join(dir, "tokens.csv")
	args := []string{"apply", "-vv", "--list", "--yes", "--retries", "1", "--journal", jp, "--tokens-out", tokensOut, m}

	var written strings.Builder // every byte synbatch wrote
	r1 := e.synbatch(t, dir, append([]string{"apply", "--server", proxy.URL}, args[1:]...)...)
	written.WriteString(r1.stdout + r1.stderr)
	if r1.code != 1 || !strings.Contains(r1.stdout, "token:(row 22): failed") {
		t.Fatalf("through the failing proxy: exit %d, want 1 with the explicit token rows failed\nstdout:\n%s\nstderr:\n%s", r1.code, r1.stdout, r1.stderr)
	}
	if !strings.Contains(r1.stderr, "registration_tokens/[redacted]") {
		t.Errorf("-vv does not show the redacted token path:\n%s", r1.stderr)
	}
	// The failed rows' errors, as the summary and the report show them.
	for _, cmd := range [][]string{{"journal", "summary", jp}, {"journal", "report", "--out", "-", jp}} {
		r := e.synbatch(t, dir, cmd...)
		written.WriteString(r.stdout + r.stderr)
		if !strings.Contains(r.stdout, "registration_tokens/[redacted]") {
			t.Errorf("%v does not show the failed read, redacted:\n%s", cmd, r.stdout)
		}
	}
	// The token reads work again (the proxy is gone, hence --allow-changed).
	r2 := e.synbatch(t, dir, append([]string{"apply", "--allow-changed"}, args[1:]...)...)
	written.WriteString(r2.stdout + r2.stderr)
	if r2.code != 0 {
		t.Fatalf("second run: exit %d\nstdout:\n%s\nstderr:\n%s", r2.code, r2.stdout, r2.stderr)
	}
	sum := e.synbatch(t, dir, "journal", "summary", jp)
	rep := e.synbatch(t, dir, "journal", "report", "--out", "-", jp)
	if rep.code != 0 || sum.code != 0 {
		t.Fatalf("summary exit %d, report exit %d: %s %s", sum.code, rep.code, sum.stderr, rep.stderr)
	}
	journal, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	written.WriteString(sum.stdout + sum.stderr + rep.stdout + rep.stderr + string(journal))

	// Twenty tokens, each beside its label, each on the server.
	fi, err := os.Stat(tokensOut)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--tokens-out: %v, mode %v", err, fi)
	}
	f, _ := os.Open(tokensOut)
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 21 || recs[0][0] != "label" || recs[0][1] != "token" {
		t.Fatalf("--tokens-out holds %v (%v); want a label,token header and 20 lines", recs, err)
	}
	secrets := append([]string{password}, explicit...)
	byLabel, seen := map[string]string{}, map[string]bool{}
	for _, rec := range recs[1:] {
		byLabel[rec[0]] = rec[1]
	}
	for i := range 20 {
		label := fmt.Sprintf("contractor%02d.%s@example.org", i, p)
		tok := byLabel[label]
		if tok == "" || seen[tok] {
			t.Errorf("--tokens-out has no token of its own for %s: %v", label, recs)
			continue
		}
		seen[tok] = true
		rec := []string{label, tok}
		if found, uses, _ := e.regToken(t, rec[1]); !found || uses == nil || *uses != 1 {
			t.Errorf("%s's token is not on the server with one use", rec[0])
		}
		secrets = append(secrets, rec[1])
	}
	for _, tok := range explicit {
		if found, _, _ := e.regToken(t, tok); !found {
			t.Errorf("explicit token row %s... not made", tok[:6])
		}
	}
	if !e.login(t, p+".pw", password) {
		t.Error("the password row's user cannot log in")
	}
	out := written.String()
	if !strings.Contains(out, fmt.Sprintf("contractor00.%s@example.org", p)) {
		t.Error("the output never names a token by its label")
	}
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, url.PathEscape(s)) {
			i := max(strings.Index(out, s), strings.Index(out, url.PathEscape(s)))
			t.Errorf("a secret (%s…) appears in what synbatch wrote: …%s…", s[:4], strings.ReplaceAll(out[max(0, i-300):i], s, "SECRET"))
		}
	}
}
