package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestMistypedProviderSendsNothing: the test server lists cas, oidc and
// oidc-keycloak in its login flows. A manifest that names "keycloak" (in a
// row, or bare ids with --auth-provider) is refused by plan and apply with
// exit 2 and a message naming the listed providers, and the server is read
// back: no account, no mapping. --allow-unknown-provider lets the same
// manifest through (a provider about to be configured), and the listed id
// passes without it.
func TestMistypedProviderSendsNothing(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	a, b := p+"-a", p+"-b"
	writeFile(t, dir, "typo.csv", fmt.Sprintf("user_id,action,external_ids\n%s,create,keycloak:sub-%s\n", a, a))
	writeFile(t, dir, "bare.csv", fmt.Sprintf("user_id,action,external_ids\n%s,create,sub-%s\n", b, b))

	for _, args := range [][]string{
		{"plan", "typo.csv"},
		{"apply", "typo.csv"},
		{"apply", "bare.csv", "--auth-provider", "keycloak"},
		{"plan", "bare.csv", "--auth-provider", "keycloak"},
	} {
		r := e.synbatch(t, dir, args...)
		if r.code != 2 {
			t.Fatalf("%v: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"unknown identity provider", "keycloak", "the server lists oidc, oidc-keycloak, cas", "nothing was sent"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, r.stderr)
			}
		}
	}
	for _, l := range []string{a, b} {
		if u := e.user(t, e.id(l)); u != nil {
			t.Fatalf("%s was created by a refused run: %+v", e.id(l), u)
		}
		for _, prov := range []string{"keycloak", "oidc-keycloak"} {
			if o := e.idOwner(t, prov, "sub-"+l); o != "" {
				t.Errorf("%s:sub-%s maps to %s after a refused run", prov, l, o)
			}
		}
	}
	noFile(t, dir+"/typo.csv.journal.jsonl")

	// One about to be configured: the admin says so, and it goes through.
	r := e.synbatch(t, dir, "apply", "typo.csv", "--allow-unknown-provider")
	if r.code != 0 || !strings.Contains(r.stderr, "--allow-unknown-provider: going on") {
		t.Fatalf("--allow-unknown-provider: exit %d\n%s", r.code, r.stderr)
	}
	if o := e.idOwner(t, "keycloak", "sub-"+a); o != e.id(a) {
		t.Errorf("keycloak:sub-%s belongs to %q, want %s", a, o, e.id(a))
	}
	// The listed id passes without it.
	e.applyJSON(t, dir, 0, "bare.csv", "--auth-provider", "oidc-keycloak")
	if o := e.idOwner(t, "oidc-keycloak", "sub-"+b); o != e.id(b) {
		t.Errorf("oidc-keycloak:sub-%s belongs to %q, want %s", b, o, e.id(b))
	}
}
