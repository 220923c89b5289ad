package masstandin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClient = "01J44RKQYM4G3TNVANTMTDYTX6"
	testSecret = "client-secret-for-tests"
	testShared = "shared-secret-for-tests"
	provOIDC   = "01JSHPZHAXC50QBKH67MH33TNF"
	provKC     = "01JSHQ0SZ8MZ2TGMSKYC1MPFAB"
)

// clock is an injected clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeSynapse records what the stand-in sends to /_synapse/mas/….
type fakeSynapse struct {
	mu       sync.Mutex
	calls    []string // "path body"
	taken    map[string]bool
	lastAuth string
}

func (f *fakeSynapse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAuth = r.Header.Get("Authorization")
	if r.URL.Path == "/_synapse/mas/is_localpart_available" {
		if f.taken[r.URL.Query().Get("localpart")] {
			w.WriteHeader(400)
			w.Write([]byte(`{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`))
			return
		}
		w.Write([]byte(`{}`))
		return
	}
	f.calls = append(f.calls, r.URL.Path+" "+string(b))
	w.Write([]byte(`{}`))
}

func (f *fakeSynapse) callsTo(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, path+" ") {
			out = append(out, strings.TrimPrefix(c, path+" "))
		}
	}
	return out
}

type rig struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	clock *clock
	syn   *fakeSynapse
	token string
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	syn := &fakeSynapse{taken: map[string]bool{}}
	synSrv := httptest.NewServer(syn)
	t.Cleanup(synSrv.Close)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := Config{
		Issuer:       "http://mas.invalid/",
		SynapseURL:   synSrv.URL,
		SharedSecret: testShared,
		ServerName:   "synbatch.test",
		AdminClients: map[string]string{testClient: testSecret},
		Providers: []Provider{
			{ID: provOIDC, HumanName: "OIDC (test)", Issuer: "https://oidc.invalid/"},
			{ID: provKC, HumanName: "Keycloak (test)", Issuer: "https://keycloak.invalid/"},
		},
		Now: c.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	r := &rig{t: t, srv: s, http: hs, clock: c, syn: syn}
	r.token = r.clientToken(ScopeMASAdmin)
	return r
}

// clientToken does the client-credentials grant with client_secret_basic.
func (r *rig) clientToken(scope string) string {
	r.t.Helper()
	code, body := r.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, testClient, testSecret)
	if code != 200 {
		r.t.Fatalf("token: HTTP %d %v", code, body)
	}
	return body["access_token"].(string)
}

func (r *rig) form(path string, v url.Values, user, pass string) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.http.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return r.send(req)
}

func (r *rig) send(req *http.Request) (int, map[string]any) {
	r.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			r.t.Fatalf("%s %s: not JSON: %s", req.Method, req.URL, b)
		}
	}
	return resp.StatusCode, m
}

// api calls the admin API with the rig's token.
func (r *rig) api(method, path string, body any) (int, map[string]any) {
	r.t.Helper()
	return r.apiAs(r.token, method, path, body)
}

func (r *rig) apiAs(token, method, path string, body any) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.http.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return r.send(req)
}

func (r *rig) mustUser(name string) string {
	r.t.Helper()
	code, body := r.api("POST", "/api/admin/v1/users", map[string]any{"username": name})
	if code != 201 {
		r.t.Fatalf("create %s: HTTP %d %v", name, code, body)
	}
	return dataID(body)
}

func dataID(body map[string]any) string {
	return body["data"].(map[string]any)["id"].(string)
}

func attrs(body map[string]any) map[string]any {
	return body["data"].(map[string]any)["attributes"].(map[string]any)
}

func errTitle(body map[string]any) string {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["title"].(string)
}

func TestSecondLinkForAnOwnedSubjectIsAConflictEvenForTheSameUser(t *testing.T) {
	r := newRig(t, nil)
	alice, bob := r.mustUser("alice"), r.mustUser("bob")
	link := map[string]any{"user_id": alice, "provider_id": provKC, "subject": "a|1", "human_account_name": "alice@kc"}
	if code, body := r.api("POST", "/api/admin/v1/upstream-oauth-links", link); code != 201 {
		t.Fatalf("first link: HTTP %d %v", code, body)
	}
	// The same request again (a retry after a lost answer) is a 409, not a 200.
	code, body := r.api("POST", "/api/admin/v1/upstream-oauth-links", link)
	if code != 409 || !strings.Contains(errTitle(body), "already linked") {
		t.Fatalf("same link again: HTTP %d %v, want 409 already linked", code, body)
	}
	link["user_id"] = bob
	if code, _ := r.api("POST", "/api/admin/v1/upstream-oauth-links", link); code != 409 {
		t.Fatalf("subject for another user: HTTP %d, want 409", code)
	}
	// The same subject at another provider is a different link.
	link["provider_id"] = provOIDC
	if code, body := r.api("POST", "/api/admin/v1/upstream-oauth-links", link); code != 201 {
		t.Fatalf("other provider: HTTP %d %v", code, body)
	}
	// The owner is found by subject.
	code, body = r.api("GET", "/api/admin/v1/upstream-oauth-links?filter[provider]="+provKC+"&filter[subject]="+url.QueryEscape("a|1"), nil)
	data := body["data"].([]any)
	if code != 200 || len(data) != 1 || data[0].(map[string]any)["attributes"].(map[string]any)["user_id"] != alice {
		t.Fatalf("lookup by subject: HTTP %d %v", code, body)
	}
	// An unowned link (its user's link was deleted, then re-added by MAS on
	// login) is associated with 200: deleting and re-adding here gives 201.
	id := data[0].(map[string]any)["id"].(string)
	if code, _ := r.api("DELETE", "/api/admin/v1/upstream-oauth-links/"+id, nil); code != 204 {
		t.Fatalf("delete link: HTTP %d", code)
	}
	link["provider_id"], link["user_id"] = provKC, bob
	if code, _ := r.api("POST", "/api/admin/v1/upstream-oauth-links", link); code != 201 {
		t.Fatalf("link after delete: HTTP %d, want 201", code)
	}
	link["provider_id"] = "01JSHQ0SZ8MZ2TGMSKYC1MPFAC"
	if code, _ := r.api("POST", "/api/admin/v1/upstream-oauth-links", link); code != 404 {
		t.Fatalf("unknown provider: HTTP %d, want 404", code)
	}
}

func TestEmailsAreUniqueAcrossAllUsers(t *testing.T) {
	r := newRig(t, nil)
	alice, bob := r.mustUser("alice"), r.mustUser("bob")
	add := func(user, email string) (int, map[string]any) {
		return r.api("POST", "/api/admin/v1/user-emails", map[string]any{"user_id": user, "email": email})
	}
	if code, body := add(alice, "alice@example.org"); code != 201 {
		t.Fatalf("add: HTTP %d %v", code, body)
	}
	if code, body := add(alice, "alice@example.org"); code != 409 || !strings.Contains(errTitle(body), "already in use") {
		t.Fatalf("again for the same user: HTTP %d %v, want 409", code, body)
	}
	if code, _ := add(bob, "alice@example.org"); code != 409 {
		t.Fatalf("for another user: HTTP %d, want 409", code)
	}
	if code, _ := add(bob, "not an address"); code != 400 {
		t.Fatalf("bad address: HTTP %d, want 400", code)
	}
	code, body := r.api("GET", "/api/admin/v1/user-emails?filter[email]=alice@example.org", nil)
	if data := body["data"].([]any); code != 200 || len(data) != 1 || data[0].(map[string]any)["attributes"].(map[string]any)["user_id"] != alice {
		t.Fatalf("lookup by address: HTTP %d %v", code, body)
	}
	// Synapse was given the user's whole list, as MAS's provisioning job does.
	prov := r.syn.callsTo("/_synapse/mas/provision_user")
	last := prov[len(prov)-1]
	if !strings.Contains(last, `"localpart":"alice"`) || !strings.Contains(last, `"set_emails":["alice@example.org"]`) {
		t.Fatalf("provisioned %s", last)
	}
}

func TestDeactivateErasesUnlessSkipErase(t *testing.T) {
	r := newRig(t, nil)
	alice, bob := r.mustUser("alice"), r.mustUser("bob")
	r.api("POST", "/api/admin/v1/user-emails", map[string]any{"user_id": alice, "email": "a@example.org"})
	code, body := r.api("POST", "/api/admin/v1/users/"+alice+"/deactivate", nil)
	if code != 200 || attrs(body)["deactivated_at"] == nil {
		t.Fatalf("deactivate without a body: HTTP %d %v", code, body)
	}
	if code, _ := r.api("POST", "/api/admin/v1/users/"+bob+"/deactivate", map[string]any{"skip_erase": true}); code != 200 {
		t.Fatalf("deactivate with skip_erase: HTTP %d", code)
	}
	got := r.syn.callsTo("/_synapse/mas/delete_user")
	want := []string{`{"erase":true,"localpart":"alice"}`, `{"erase":false,"localpart":"bob"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delete_user calls %v, want %v", got, want)
	}
	// The deactivated user's e-mails are gone (MAS's job removes them).
	if _, body := r.api("GET", "/api/admin/v1/user-emails?filter[user]="+alice, nil); len(body["data"].([]any)) != 0 {
		t.Fatalf("e-mails after deactivation: %v", body)
	}
	if code, body := r.api("POST", "/api/admin/v1/users/"+alice+"/reactivate", nil); code != 200 || attrs(body)["deactivated_at"] != nil {
		t.Fatalf("reactivate: HTTP %d %v", code, body)
	}
	if n := len(r.syn.callsTo("/_synapse/mas/reactivate_user")); n != 1 {
		t.Fatalf("reactivate_user calls: %d", n)
	}
}

func TestClientTokensExpire(t *testing.T) {
	r := newRig(t, func(c *Config) { c.TokenTTL = 2 * time.Minute })
	if code, _ := r.api("GET", "/api/admin/v1/users", nil); code != 200 {
		t.Fatalf("fresh token: HTTP %d", code)
	}
	_, in := r.form("/oauth2/introspect", url.Values{"token": {r.token}}, testClient, testSecret)
	if in["active"] != true || in["expires_in"].(float64) != 120 {
		t.Fatalf("introspect fresh: %v", in)
	}
	r.clock.Add(2*time.Minute - time.Second)
	if code, _ := r.api("GET", "/api/admin/v1/users", nil); code != 200 {
		t.Fatalf("token a second before expiry: HTTP %d", code)
	}
	r.clock.Add(time.Second)
	if code, body := r.api("GET", "/api/admin/v1/users", nil); code != 401 || errTitle(body) == "" {
		t.Fatalf("expired token: HTTP %d %v, want 401 with errors", code, body)
	}
	if _, in := r.form("/oauth2/introspect", url.Values{"token": {r.token}}, testClient, testSecret); in["active"] != false {
		t.Fatalf("introspect expired: %v", in)
	}
	// A new grant gives a token that works again.
	r.token = r.clientToken(ScopeMASAdmin)
	if code, _ := r.api("GET", "/api/admin/v1/users", nil); code != 200 {
		t.Fatalf("renewed token: HTTP %d", code)
	}
}

func TestListsPageByCursorTenByDefault(t *testing.T) {
	r := newRig(t, nil)
	var want []string
	for i := 0; i < 25; i++ {
		r.mustUser(fmt.Sprintf("u%02d", i))
		want = append(want, fmt.Sprintf("u%02d", i))
	}
	var got []string
	next := "/api/admin/v1/users"
	pages := 0
	for next != "" {
		code, body := r.api("GET", next, nil)
		if code != 200 {
			t.Fatalf("GET %s: HTTP %d %v", next, code, body)
		}
		pages++
		data := body["data"].([]any)
		if pages == 1 && len(data) != 10 {
			t.Fatalf("first page without page[first]: %d items, want 10", len(data))
		}
		if body["meta"].(map[string]any)["count"].(float64) != 25 {
			t.Fatalf("meta.count %v, want 25", body["meta"])
		}
		for _, d := range data {
			m := d.(map[string]any)
			got = append(got, m["attributes"].(map[string]any)["username"].(string))
			if m["meta"].(map[string]any)["page"].(map[string]any)["cursor"] != m["id"] {
				t.Fatalf("cursor of %v is not its id", m)
			}
		}
		next, _ = body["links"].(map[string]any)["next"].(string)
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%d pages: %v, want 3 pages of %v in order", pages, got, want)
	}
	// Paging by the cursor a client saved: after the 12th user, 5 at a time.
	_, body := r.api("GET", "/api/admin/v1/users?page[first]=5", nil)
	_, body = r.api("GET", "/api/admin/v1/users?page[first]=5", nil)
	first := body["data"].([]any)
	cursor := first[4].(map[string]any)["id"].(string)
	_, body = r.api("GET", "/api/admin/v1/users?page[first]=5&page[after]="+cursor, nil)
	if u := body["data"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["username"]; u != "u05" {
		t.Fatalf("after the 5th: %v, want u05", u)
	}
	_, body = r.api("GET", "/api/admin/v1/users?page[last]=3", nil)
	if d := body["data"].([]any); len(d) != 3 || d[2].(map[string]any)["attributes"].(map[string]any)["username"] != "u24" {
		t.Fatalf("page[last]=3: %v", d)
	}
	if code, _ := r.api("GET", "/api/admin/v1/users?page[after]=notaulid", nil); code != 400 {
		t.Fatalf("bad cursor: HTTP %d, want 400", code)
	}
	if code, _ := r.api("GET", "/api/admin/v1/users?page[first]=2&page[last]=2", nil); code != 400 {
		t.Fatalf("first and last: HTTP %d, want 400", code)
	}
}

func TestUnknownClientsAndWrongSecretsAreRefused(t *testing.T) {
	r := newRig(t, nil)
	v := url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeMASAdmin}}
	if code, body := r.form("/oauth2/token", v, testClient, "wrong"); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: HTTP %d %v", code, body)
	}
	if code, _ := r.form("/oauth2/token", v, "01J44RKQYM4G3TNVANTMTDYTX7", testSecret); code != 401 {
		t.Fatalf("unknown client: HTTP %d", code)
	}
	// client_secret_post works like basic.
	pv := url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeMASAdmin}, "client_id": {testClient}, "client_secret": {testSecret}}
	if code, body := r.form("/oauth2/token", pv, "", ""); code != 200 || body["access_token"] == nil {
		t.Fatalf("client_secret_post: HTTP %d %v", code, body)
	}
	if code, _ := r.apiAs("mat_madeup", "GET", "/api/admin/v1/users", nil); code != 401 {
		t.Fatalf("made-up token: HTTP %d", code)
	}
	// Introspection wants Synapse's shared secret (or an admin client).
	req, _ := http.NewRequest("POST", r.http.URL+"/oauth2/introspect", strings.NewReader("token="+r.token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer not-the-secret")
	if code, _ := r.send(req); code != 401 {
		t.Fatalf("introspect with a wrong secret: HTTP %d", code)
	}
}

func TestScopeIsEnforced(t *testing.T) {
	r := newRig(t, nil)
	v := url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeSynapseAdmin}}
	if code, body := r.form("/oauth2/token", v, testClient, testSecret); code != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("synapse scope for a client: HTTP %d %v", code, body)
	}
	noScope := r.clientToken("")
	if code, _ := r.apiAs(noScope, "GET", "/api/admin/v1/users", nil); code != 403 {
		t.Fatalf("token without urn:mas:admin: HTTP %d, want 403", code)
	}
	// A personal session's token carries the scope it was made with: a
	// Synapse-admin token is no MAS-admin token.
	admin := r.mustUser("admin")
	code, body := r.api("POST", "/api/admin/v1/personal-sessions", map[string]any{
		"actor_user_id": admin, "human_name": "synbatch run", "scope": ScopeMatrixAPI + " " + ScopeSynapseAdmin, "expires_in": 600,
	})
	if code != 201 {
		t.Fatalf("personal session: HTTP %d %v", code, body)
	}
	pat := attrs(body)["access_token"].(string)
	if code, _ := r.apiAs(pat, "GET", "/api/admin/v1/users", nil); code != 403 {
		t.Fatalf("synapse-admin token on the MAS admin API: HTTP %d, want 403", code)
	}
}

func introspectShared(r *rig, token string) map[string]any {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.http.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+testShared)
	code, in := r.send(req)
	if code != 200 {
		r.t.Fatalf("introspect: HTTP %d %v", code, in)
	}
	return in
}

func TestPersonalSessionGivesSynapseAdminTokenUntilRevoked(t *testing.T) {
	r := newRig(t, nil)
	admin := r.mustUser("admin")
	_, body := r.api("POST", "/api/admin/v1/personal-sessions", map[string]any{
		"actor_user_id": admin, "human_name": "synbatch run", "scope": ScopeMatrixAPI + " " + ScopeSynapseAdmin,
	})
	sess, pat := dataID(body), attrs(body)["access_token"].(string)
	if !strings.HasPrefix(pat, "mpt_") || attrs(body)["owner_client_id"] != testClient {
		t.Fatalf("personal session %v", body)
	}
	in := introspectShared(r, pat)
	if in["active"] != true || in["username"] != "admin" || !hasScope(in["scope"].(string), ScopeSynapseAdmin) || !hasScope(in["scope"].(string), scopeMatrixAPIMSC) {
		t.Fatalf("introspection %v", in)
	}
	if code, _ := r.api("POST", "/api/admin/v1/personal-sessions/"+sess+"/revoke", nil); code != 200 {
		t.Fatalf("revoke: HTTP %d", code)
	}
	if in := introspectShared(r, pat); in["active"] != false {
		t.Fatalf("after revoke: %v", in)
	}
	if code, _ := r.api("POST", "/api/admin/v1/personal-sessions/"+sess+"/revoke", nil); code != 409 {
		t.Fatalf("second revoke: HTTP %d, want 409", code)
	}
	// A locked actor's tokens stop working too.
	_, body = r.api("POST", "/api/admin/v1/personal-sessions", map[string]any{"actor_user_id": admin, "human_name": "x", "scope": ScopeMatrixAPI})
	pat = attrs(body)["access_token"].(string)
	r.api("POST", "/api/admin/v1/users/"+admin+"/lock", nil)
	if in := introspectShared(r, pat); in["active"] != false {
		t.Fatalf("locked actor: %v", in)
	}
	// The stand-in revokes through /oauth2/revoke too (what a run does at its end).
	r.api("POST", "/api/admin/v1/users/"+admin+"/unlock", nil)
	if in := introspectShared(r, pat); in["active"] != true {
		t.Fatalf("unlocked actor: %v", in)
	}
	if code, _ := r.form("/oauth2/revoke", url.Values{"token": {pat}}, testClient, testSecret); code != 200 {
		t.Fatalf("oauth2/revoke: HTTP %d", code)
	}
	if in := introspectShared(r, pat); in["active"] != false {
		t.Fatalf("after oauth2/revoke: %v", in)
	}
}

func TestCreateUserProvisionsAndRefusesTakenNames(t *testing.T) {
	r := newRig(t, nil)
	code, body := r.api("POST", "/api/admin/v1/users", map[string]any{"username": "carol", "displayname": "Carol C"})
	if code != 201 || attrs(body)["username"] != "carol" || attrs(body)["admin"] != false {
		t.Fatalf("create: HTTP %d %v", code, body)
	}
	prov := r.syn.callsTo("/_synapse/mas/provision_user")
	if len(prov) != 1 || !strings.Contains(prov[0], `"set_displayname":"Carol C"`) || r.syn.lastAuth != "Bearer "+testShared {
		t.Fatalf("provision calls %v (auth %q)", prov, r.syn.lastAuth)
	}
	if code, body := r.api("POST", "/api/admin/v1/users", map[string]any{"username": "carol"}); code != 409 || errTitle(body) != "User already exists" {
		t.Fatalf("again: HTTP %d %v", code, body)
	}
	r.syn.taken["admin"] = true
	if code, body := r.api("POST", "/api/admin/v1/users", map[string]any{"username": "admin"}); code != 409 || !strings.Contains(errTitle(body), "reserved") {
		t.Fatalf("taken in synapse: HTTP %d %v", code, body)
	}
	if code, _ := r.api("POST", "/api/admin/v1/users", map[string]any{"username": "admin", "skip_homeserver_check": true}); code != 201 {
		t.Fatalf("taken in synapse with skip_homeserver_check: HTTP %d", code)
	}
	if code, _ := r.api("POST", "/api/admin/v1/users", map[string]any{"username": "Bad Name"}); code != 400 {
		t.Fatalf("bad username: HTTP %d", code)
	}
	code, body = r.api("GET", "/api/admin/v1/users/by-username/carol", nil)
	if code != 200 || attrs(body)["username"] != "carol" {
		t.Fatalf("by username: HTTP %d %v", code, body)
	}
	if code, _ := r.api("GET", "/api/admin/v1/users/by-username/nobody", nil); code != 404 {
		t.Fatalf("unknown username: HTTP %d", code)
	}
	id := dataID(body)
	code, body = r.api("POST", "/api/admin/v1/users/"+id+"/set-admin", map[string]any{"admin": true})
	if code != 200 || attrs(body)["admin"] != true {
		t.Fatalf("set-admin: HTTP %d %v", code, body)
	}
	_, body = r.api("GET", "/api/admin/v1/users?filter[admin]=true", nil)
	if d := body["data"].([]any); len(d) != 1 {
		t.Fatalf("admins: %v", d)
	}
}

func login(r *rig, user, password string) (int, map[string]any) {
	b, _ := json.Marshal(map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password})
	req, _ := http.NewRequest("POST", r.http.URL+"/_matrix/client/v3/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return r.send(req)
}

func TestPasswordIsCheckedByCompatLogin(t *testing.T) {
	r := newRig(t, nil)
	dave := r.mustUser("dave")
	if code, body := r.api("POST", "/api/admin/v1/users/"+dave+"/set-password", map[string]any{"password": "short"}); code != 400 {
		t.Fatalf("weak password: HTTP %d %v, want 400", code, body)
	}
	if code, _ := r.api("POST", "/api/admin/v1/users/"+dave+"/set-password", map[string]any{"password": "correct horse battery"}); code != 204 {
		t.Fatalf("set-password: HTTP %d", code)
	}
	if code, body := login(r, "dave", "wrong password"); code != 403 || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("wrong password: HTTP %d %v", code, body)
	}
	code, body := login(r, "@dave:synbatch.test", "correct horse battery")
	if code != 200 || body["user_id"] != "@dave:synbatch.test" || body["device_id"] == "" {
		t.Fatalf("right password: HTTP %d %v", code, body)
	}
	in := introspectShared(r, body["access_token"].(string))
	if in["active"] != true || in["username"] != "dave" || in["device_id"] != body["device_id"] {
		t.Fatalf("compat token introspection %v", in)
	}
	if up := r.syn.callsTo("/_synapse/mas/upsert_device"); len(up) != 1 || !strings.Contains(up[0], body["device_id"].(string)) {
		t.Fatalf("upsert_device calls %v", up)
	}
	// The session shows in MAS; finishing it ends the token and the device.
	_, list := r.api("GET", "/api/admin/v1/compat-sessions?filter[user]="+dave+"&filter[status]=active", nil)
	data := list["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("compat sessions %v", list)
	}
	sid := data[0].(map[string]any)["id"].(string)
	if code, _ := r.api("POST", "/api/admin/v1/compat-sessions/"+sid+"/finish", nil); code != 200 {
		t.Fatalf("finish: HTTP %d", code)
	}
	if code, _ := r.api("POST", "/api/admin/v1/compat-sessions/"+sid+"/finish", nil); code != 400 {
		t.Fatalf("finish again: HTTP %d, want 400", code)
	}
	if in := introspectShared(r, body["access_token"].(string)); in["active"] != false {
		t.Fatalf("finished session's token: %v", in)
	}
	if del := r.syn.callsTo("/_synapse/mas/delete_device"); len(del) != 1 {
		t.Fatalf("delete_device calls %v", del)
	}
	r2 := newRig(t, func(c *Config) { c.PasswordsDisabled = true })
	eve := r2.mustUser("eve")
	if code, _ := r2.api("POST", "/api/admin/v1/users/"+eve+"/set-password", map[string]any{"password": "correct horse battery"}); code != 403 {
		t.Fatalf("passwords disabled: HTTP %d, want 403", code)
	}
}

func TestStateSurvivesARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mas-state.json")
	r := newRig(t, func(c *Config) { c.StateFile = file })
	alice := r.mustUser("alice")
	r.api("POST", "/api/admin/v1/user-emails", map[string]any{"user_id": alice, "email": "a@example.org"})
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := New(Config{Issuer: "http://mas.invalid/", ServerName: "synbatch.test", AdminClients: map[string]string{testClient: testSecret}, StateFile: file, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	hs := httptest.NewServer(s2.Handler())
	defer hs.Close()
	r.http = hs
	// The old token is still good after the restart, and the user is there.
	code, body := r.api("GET", "/api/admin/v1/users/by-username/alice", nil)
	if code != 200 || dataID(body) != alice {
		t.Fatalf("after restart: HTTP %d %v", code, body)
	}
	if _, body := r.api("GET", "/api/admin/v1/user-emails?filter[user]="+alice, nil); len(body["data"].([]any)) != 1 {
		t.Fatalf("e-mails after restart: %v", body)
	}
}

func TestRegistrationTokensHonourLimitExpiryAndRevocation(t *testing.T) {
	r := newRig(t, nil)
	exp := r.clock.Now().Add(time.Hour)
	code, body := r.api("POST", "/api/admin/v1/user-registration-tokens", map[string]any{"token": "welcome", "usage_limit": 1, "expires_at": exp})
	if code != 201 || attrs(body)["valid"] != true {
		t.Fatalf("create: HTTP %d %v", code, body)
	}
	id := dataID(body)
	if code, _ := r.api("POST", "/api/admin/v1/user-registration-tokens", map[string]any{"token": "welcome"}); code != 409 {
		t.Fatalf("duplicate token: HTTP %d", code)
	}
	if err := r.srv.UseRegistrationToken("welcome"); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.UseRegistrationToken("welcome"); err == nil {
		t.Fatal("a token with usage_limit 1 was used twice")
	}
	_, body = r.api("GET", "/api/admin/v1/user-registration-tokens/"+id, nil)
	if a := attrs(body); a["valid"] != false || a["times_used"].(float64) != 1 {
		t.Fatalf("after use: %v", a)
	}
	r.api("PUT", "/api/admin/v1/user-registration-tokens/"+id, map[string]any{"usage_limit": nil})
	code, body = r.api("GET", "/api/admin/v1/user-registration-tokens?filter[valid]=true", nil)
	if code != 200 {
		t.Fatalf("list valid: HTTP %d %v", code, body)
	}
	if len(body["data"].([]any)) != 1 {
		t.Fatalf("valid after lifting the limit: %v", body)
	}
	r.clock.Add(2 * time.Hour)
	r.token = r.clientToken(ScopeMASAdmin) // the old one lived 5 minutes
	_, body = r.api("GET", "/api/admin/v1/user-registration-tokens?filter[expired]=true", nil)
	if len(body["data"].([]any)) != 1 {
		t.Fatalf("expired: %v", body)
	}
	if code, _ := r.api("POST", "/api/admin/v1/user-registration-tokens/"+id+"/unrevoke", nil); code != 400 {
		t.Fatalf("unrevoke a live token: HTTP %d, want 400", code)
	}
	if code, _ := r.api("POST", "/api/admin/v1/user-registration-tokens/"+id+"/revoke", nil); code != 200 {
		t.Fatalf("revoke: HTTP %d", code)
	}
	if code, _ := r.api("POST", "/api/admin/v1/user-registration-tokens/"+id+"/revoke", nil); code != 400 {
		t.Fatalf("revoke twice: HTTP %d, want 400", code)
	}
}

func TestULIDsSortInCreationOrderWithinAMillisecond(t *testing.T) {
	var g ulidGen
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := ""
	for i := 0; i < 1000; i++ {
		id := g.next(now)
		if validULID(id) != nil || id <= prev {
			t.Fatalf("id %d %q after %q", i, id, prev)
		}
		prev = id
	}
	if got := providerCreated(g.next(now)); !got.Equal(now) {
		t.Fatalf("time in the ULID: %v, want %v", got, now)
	}
}

func TestOAuth2SessionHasADeviceUntilFinished(t *testing.T) {
	r := newRig(t, nil)
	frank := r.mustUser("frank")
	code, body := r.api("POST", "/_standin/oauth2-sessions", map[string]any{"username": "frank"})
	if code != 201 {
		t.Fatalf("oauth2 session: HTTP %d %v", code, body)
	}
	device, tok, sid := body["device_id"].(string), body["access_token"].(string), dataID(body)
	in := introspectShared(r, tok)
	if in["active"] != true || in["username"] != "frank" || in["device_id"] != device || !hasScope(in["scope"].(string), "urn:matrix:client:device:"+device) {
		t.Fatalf("introspection %v", in)
	}
	if up := r.syn.callsTo("/_synapse/mas/upsert_device"); len(up) != 1 || !strings.Contains(up[0], device) {
		t.Fatalf("upsert_device calls %v", up)
	}
	_, list := r.api("GET", "/api/admin/v1/oauth2-sessions?filter[user]="+frank+"&filter[status]=active", nil)
	if d := list["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != sid {
		t.Fatalf("active oauth2 sessions of frank: %v", list)
	}
	if code, _ := r.api("POST", "/api/admin/v1/oauth2-sessions/"+sid+"/finish", nil); code != 200 {
		t.Fatalf("finish: HTTP %d", code)
	}
	if in := introspectShared(r, tok); in["active"] != false {
		t.Fatalf("finished session's token: %v", in)
	}
	if del := r.syn.callsTo("/_synapse/mas/delete_device"); len(del) != 1 || !strings.Contains(del[0], device) {
		t.Fatalf("delete_device calls %v", del)
	}
	// Browser sessions, made the same way, list and finish.
	code, body = r.api("POST", "/_standin/user-sessions", map[string]any{"username": "frank"})
	if code != 201 {
		t.Fatalf("user session: HTTP %d %v", code, body)
	}
	if code, _ := r.api("POST", "/api/admin/v1/user-sessions/"+dataID(body)+"/finish", nil); code != 200 {
		t.Fatalf("finish user session: HTTP %d", code)
	}
	if code, _ := r.apiAs("mat_madeup", "POST", "/_standin/oauth2-sessions", map[string]any{"username": "frank"}); code != 401 {
		t.Fatalf("/_standin without a token: HTTP %d, want 401", code)
	}
}

// TestStandinRouteSetsLastActiveOfEachSessionKind: the test-only route ages a
// compat, an OAuth 2.0 and a browser session; the admin API then shows that
// last_active_at (on the session and in the list a --inactive-days run
// reads), and the route refuses an unknown session, kind or a body without
// the time.
func TestStandinRouteSetsLastActiveOfEachSessionKind(t *testing.T) {
	r := newRig(t, nil)
	gina := r.mustUser("gina")
	if code, _ := r.api("POST", "/api/admin/v1/users/"+gina+"/set-password", map[string]any{"password": "correct horse battery"}); code != 204 {
		t.Fatalf("set-password: HTTP %d", code)
	}
	if code, body := login(r, "gina", "correct horse battery"); code != 200 {
		t.Fatalf("login: HTTP %d %v", code, body)
	}
	_, compat := r.api("GET", "/api/admin/v1/compat-sessions?filter[user]="+gina, nil)
	_, oauth := r.api("POST", "/_standin/oauth2-sessions", map[string]any{"username": "gina"})
	_, browser := r.api("POST", "/_standin/user-sessions", map[string]any{"username": "gina"})
	ids := map[string]string{
		"compat-sessions": compat["data"].([]any)[0].(map[string]any)["id"].(string),
		"oauth2-sessions": dataID(oauth),
		"user-sessions":   dataID(browser),
	}
	old := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for kind, id := range ids {
		code, body := r.api("POST", "/_standin/"+kind+"/"+id+"/last-active", map[string]any{"last_active_at": old.Format(time.RFC3339)})
		if code != 200 || attrs(body)["last_active_at"] != old.Format(time.RFC3339Nano) {
			t.Fatalf("%s: set last active: HTTP %d %v", kind, code, body)
		}
		if _, body := r.api("GET", "/api/admin/v1/"+kind+"/"+id, nil); attrs(body)["last_active_at"] != old.Format(time.RFC3339Nano) {
			t.Errorf("%s: the admin API shows last_active_at %v, want %s", kind, attrs(body)["last_active_at"], old)
		}
		_, list := r.api("GET", "/api/admin/v1/"+kind+"?filter[user]="+gina+"&filter[status]=active", nil)
		if d := list["data"].([]any); len(d) != 1 || d[0].(map[string]any)["attributes"].(map[string]any)["last_active_at"] != old.Format(time.RFC3339Nano) {
			t.Errorf("%s: the list shows %v", kind, list)
		}
	}
	if code, _ := r.api("POST", "/_standin/compat-sessions/"+ids["oauth2-sessions"]+"/last-active", map[string]any{"last_active_at": old}); code != 404 {
		t.Errorf("an OAuth 2.0 session's id as a compat session: HTTP %d, want 404", code)
	}
	if code, _ := r.api("POST", "/_standin/personal-sessions/"+ids["user-sessions"]+"/last-active", map[string]any{"last_active_at": old}); code != 404 {
		t.Errorf("an unknown kind: HTTP %d, want 404", code)
	}
	if code, _ := r.api("POST", "/_standin/user-sessions/"+ids["user-sessions"]+"/last-active", map[string]any{}); code != 422 {
		t.Errorf("no last_active_at: HTTP %d, want 422", code)
	}
}
