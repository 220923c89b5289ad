// Package mas runs tests against the real Synapse in MAS mode, beside the
// MAS stand-in (internal/masstandin): `scripts/synapse --mas up` starts both
// and writes ../../.synapse-mas/env, which TestMain reads.
//
// With SYNBATCH_REQUIRE_SYNAPSE=1 (as `make integration-mas` and `make test`
// set it) a missing or broken rig fails the package instead of skipping it.
//
// Synapse's side is real; MAS's side is the stand-in. Tests judge by reading
// both back: MAS through its admin API (client credentials, as synbatch
// does), Synapse through its Admin API with the Synapse-admin token the rig
// made from a MAS personal session.
package mas

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rig is the MAS-mode server pair the tests use.
type rig struct {
	server, serverName, tokenFile, token string // Synapse, and its admin token
	masURL, clientID, clientSecretFile   string // the stand-in (issuer) and its admin client
	clientSecret                         string
	bin                                  string // synbatch, built from this checkout
	hc                                   *http.Client

	mu        sync.Mutex
	masTok    string
	masTokExp time.Time
}

var (
	// theRig is set once by TestMain before any test runs and only read after.
	theRig     *rig
	skipReason string
)

func TestMain(m *testing.M) {
	r, err := setup()
	if err != nil {
		if os.Getenv("SYNBATCH_REQUIRE_SYNAPSE") == "1" {
			fmt.Fprintf(os.Stderr, "integration/mas: Synapse in MAS mode is required (SYNBATCH_REQUIRE_SYNAPSE=1) but: %v\n", err)
			os.Exit(1)
		}
		skipReason = err.Error()
	}
	theRig = r
	code := m.Run()
	if r != nil {
		os.RemoveAll(filepath.Dir(r.bin))
	}
	os.Exit(code)
}

// envFile is what scripts/synapse --mas up wrote; SYNBATCH_MAS_RIG_ENV
// names another one (a rig on other ports).
func envFile() string {
	if p := os.Getenv("SYNBATCH_MAS_RIG_ENV"); p != "" {
		return p
	}
	return filepath.Join("..", "..", ".synapse-mas", "env")
}

func setup() (*rig, error) {
	f, err := os.Open(envFile())
	if err != nil {
		return nil, fmt.Errorf("no MAS rig (run scripts/synapse --mas up): %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	r := &rig{
		server: vals["SYNBATCH_SERVER"], serverName: vals["SYNBATCH_SERVER_NAME"], tokenFile: vals["SYNBATCH_TOKEN_FILE"],
		masURL: vals["SYNBATCH_MAS_URL"], clientID: vals["SYNBATCH_MAS_CLIENT_ID"], clientSecretFile: vals["SYNBATCH_MAS_CLIENT_SECRET_FILE"],
		hc: &http.Client{Timeout: 3 * time.Minute},
	}
	for k, v := range map[string]string{"SYNBATCH_SERVER": r.server, "SYNBATCH_SERVER_NAME": r.serverName, "SYNBATCH_TOKEN_FILE": r.tokenFile,
		"SYNBATCH_MAS_URL": r.masURL, "SYNBATCH_MAS_CLIENT_ID": r.clientID, "SYNBATCH_MAS_CLIENT_SECRET_FILE": r.clientSecretFile} {
		if v == "" {
			return nil, fmt.Errorf("%s: no %s", envFile(), k)
		}
	}
	tok, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	r.token = strings.TrimSpace(string(tok))
	sec, err := os.ReadFile(r.clientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("MAS client secret: %w", err)
	}
	r.clientSecret = strings.TrimSpace(string(sec))

	// Synapse answers, delegates to this stand-in, and takes the token.
	var meta struct {
		Issuer string `json:"issuer"`
	}
	if code, err := r.getJSON(r.server+"/_matrix/client/v1/auth_metadata", "", &meta); err != nil || code != 200 {
		return nil, fmt.Errorf("synapse %s: auth_metadata: HTTP %d: %v", r.server, code, err)
	}
	if meta.Issuer != r.masURL {
		return nil, fmt.Errorf("synapse %s delegates to %q, not to the stand-in %s", r.server, meta.Issuer, r.masURL)
	}
	var who struct {
		UserID string `json:"user_id"`
	}
	if code, err := r.getJSON(r.server+"/_matrix/client/v3/account/whoami", r.token, &who); err != nil || code != 200 {
		return nil, fmt.Errorf("the rig's Synapse-admin token: whoami HTTP %d: %v", code, err)
	}
	if _, err := r.masTokenErr(); err != nil {
		return nil, fmt.Errorf("MAS client credentials: %w", err)
	}
	fmt.Fprintf(os.Stderr, "integration/mas: real Synapse at %s in MAS mode, MAS stand-in at %s, admin %s\n", r.server, r.masURL, who.UserID)

	dir, err := os.MkdirTemp("", "synbatch-bin")
	if err != nil {
		return nil, err
	}
	r.bin = filepath.Join(dir, "synbatch")
	build := exec.Command("go", "build", "-o", r.bin, "../..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build synbatch: %w", err)
	}
	return r, nil
}

// theRigFor gives a test the rig, or skips it when there is none (and none
// is required: then TestMain has failed the package already).
func theRigFor(t *testing.T) *rig {
	t.Helper()
	if theRig == nil {
		t.Skipf("no MAS rig: %s", skipReason)
	}
	return theRig
}

// uniq is a prefix that keeps a test's users apart from every other test's
// and from earlier runs' on the same server.
func uniq(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "m" + hex.EncodeToString(b)
}

func (r *rig) id(local string) string { return "@" + local + ":" + r.serverName }

// --- HTTP ----------------------------------------------------------------------

func (r *rig) do(method, u, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (r *rig) getJSON(u, token string, out any) (int, error) {
	code, b, err := r.do("GET", u, token, nil)
	if err != nil {
		return code, err
	}
	if code/100 != 2 {
		return code, fmt.Errorf("%s", bytes.TrimSpace(b))
	}
	return code, json.Unmarshal(b, out)
}

// call does one request and decodes a JSON object answer (nil for none).
func (r *rig) call(t *testing.T, method, u, token string, body any) (int, map[string]any) {
	t.Helper()
	code, b, err := r.do(method, u, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	var m map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: HTTP %d, not a JSON object: %s", method, u, code, b)
		}
	}
	return code, m
}

// synapse calls Synapse (client or Admin API) with the rig's admin token.
func (r *rig) synapse(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return r.call(t, method, r.server+path, r.token, body)
}

// synapseUser reads a user back through Synapse's Admin API; nil when Synapse
// has no such user.
func (r *rig) synapseUser(t *testing.T, userID string) map[string]any {
	t.Helper()
	code, u := r.synapse(t, "GET", "/_synapse/admin/v2/users/"+url.PathEscape(userID), nil)
	switch code {
	case 200:
		return u
	case 404:
		return nil
	}
	t.Fatalf("synapse GET user %s: HTTP %d %v", userID, code, u)
	return nil
}

// synapseEmails lists the e-mail addresses Synapse holds for a user.
func synapseEmails(u map[string]any) []string {
	var out []string
	tps, _ := u["threepids"].([]any)
	for _, tp := range tps {
		m := tp.(map[string]any)
		if m["medium"] == "email" {
			out = append(out, m["address"].(string))
		}
	}
	return out
}

// --- MAS (the stand-in) ----------------------------------------------------------

// masTokenErr fetches (and renews a minute before expiry) the admin client's
// urn:mas:admin token, by the client-credentials grant.
func (r *rig) masTokenErr() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.masTok != "" && time.Now().Before(r.masTokExp.Add(-time.Minute)) {
		return r.masTok, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"urn:mas:admin"}}
	req, err := http.NewRequest("POST", r.masURL+"oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(r.clientID, r.clientSecret)
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("token: HTTP %d: %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", err
	}
	r.masTok, r.masTokExp = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	return r.masTok, nil
}

// mas calls MAS's admin API (path under /api/admin/v1).
func (r *rig) mas(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	tok, err := r.masTokenErr()
	if err != nil {
		t.Fatal(err)
	}
	return r.call(t, method, strings.TrimRight(r.masURL, "/")+"/api/admin/v1"+path, tok, body)
}

// masResource is one JSON:API resource.
type masResource struct {
	ID         string
	Attributes map[string]any
}

func resourceOf(m map[string]any) masResource {
	d := m
	if data, ok := m["data"].(map[string]any); ok {
		d = data
	}
	attrs, _ := d["attributes"].(map[string]any)
	id, _ := d["id"].(string)
	return masResource{ID: id, Attributes: attrs}
}

// masList reads every page of a list (path with its filters), following
// links.next as a client paging by cursor does.
func (r *rig) masList(t *testing.T, path string) []masResource {
	t.Helper()
	var out []masResource
	next := path
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			t.Fatalf("listing %s: no end after 10000 pages", path)
		}
		code, body := r.mas(t, "GET", next, nil)
		if code != 200 {
			t.Fatalf("MAS GET %s: HTTP %d %v", next, code, body)
		}
		data, _ := body["data"].([]any)
		for _, d := range data {
			out = append(out, resourceOf(d.(map[string]any)))
		}
		next, _ = body["links"].(map[string]any)["next"].(string)
		next = strings.TrimPrefix(next, "/api/admin/v1")
	}
	return out
}

// masUser reads a user by username; nil when MAS has none.
func (r *rig) masUser(t *testing.T, username string) *masResource {
	t.Helper()
	code, body := r.mas(t, "GET", "/users/by-username/"+url.PathEscape(username), nil)
	switch code {
	case 200:
		res := resourceOf(body)
		return &res
	case 404:
		return nil
	}
	t.Fatalf("MAS GET user %s: HTTP %d %v", username, code, body)
	return nil
}

// masCreateUser creates a user through MAS's admin API; MAS provisions it in Synapse.
func (r *rig) masCreateUser(t *testing.T, username string, attrs map[string]any) masResource {
	t.Helper()
	body := map[string]any{"username": username}
	for k, v := range attrs {
		body[k] = v
	}
	code, res := r.mas(t, "POST", "/users", body)
	if code != 201 {
		t.Fatalf("MAS create %s: HTTP %d %v", username, code, res)
	}
	return resourceOf(res)
}

// masEmails lists the addresses MAS holds for a user id.
func (r *rig) masEmails(t *testing.T, userID string) []string {
	t.Helper()
	var out []string
	for _, e := range r.masList(t, "/user-emails?filter[user]="+userID+"&page[first]=100") {
		out = append(out, e.Attributes["email"].(string))
	}
	return out
}

// masLinks lists a user's upstream links as "provider-id/subject".
func (r *rig) masLinks(t *testing.T, userID string) []string {
	t.Helper()
	var out []string
	for _, l := range r.masList(t, "/upstream-oauth-links?filter[user]="+userID+"&page[first]=100") {
		out = append(out, l.Attributes["provider_id"].(string)+"/"+l.Attributes["subject"].(string))
	}
	return out
}

// masProviders maps the providers' human names to their ids.
func (r *rig) masProviders(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range r.masList(t, "/upstream-oauth-providers") {
		name, _ := p.Attributes["human_name"].(string)
		out[name] = p.ID
	}
	return out
}

// masLogin logs in with a password through MAS's compatibility layer (the
// stand-in's /_matrix/client/v3/login), the way to check a password through
// MAS. It returns the status and, on success, an access token Synapse accepts.
func (r *rig) masLogin(t *testing.T, username, password string) (int, map[string]any) {
	t.Helper()
	return r.call(t, "POST", r.masURL+"_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": username}, "password": password,
	})
}

// masPasswordWorks says whether MAS takes this password for this user.
func (r *rig) masPasswordWorks(t *testing.T, username, password string) bool {
	t.Helper()
	code, body := r.masLogin(t, username, password)
	switch code {
	case 200:
		return true
	case 403:
		return false
	}
	t.Fatalf("MAS login %s: HTTP %d %v", username, code, body)
	return false
}

// --- synbatch ----------------------------------------------------------------------

type result struct {
	stdout, stderr string
	code           int
}

// env is a hermetic environment for synbatch: nothing inherited but PATH, its
// own HOME, and the rig's server and MAS credentials. withSynapseToken gives
// it the rig's Synapse-admin token too (else synbatch must get one from MAS).
func (r *rig) env(home string, withSynapseToken bool) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"SYNBATCH_SERVER=" + r.server, "SYNBATCH_SERVER_NAME=" + r.serverName,
		"SYNBATCH_MAS_URL=" + r.masURL, "SYNBATCH_MAS_CLIENT_ID=" + r.clientID,
		"SYNBATCH_MAS_CLIENT_SECRET_FILE=" + r.clientSecretFile,
	}
	if withSynapseToken {
		e = append(e, "SYNBATCH_TOKEN_FILE="+r.tokenFile)
	}
	return e
}

// synbatch runs the binary in dir with the environment env.
func (r *rig) synbatch(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run synbatch: %v", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// masOAuth2Login signs a user in as a Matrix client would through MAS (a
// stand-in-only route: a real MAS does this in a browser): an OAuth 2.0
// session with a device in Synapse. It returns the session's id, the device
// and a token Synapse accepts.
func (r *rig) masOAuth2Login(t *testing.T, username string) (session, device, token string) {
	t.Helper()
	tok, err := r.masTokenErr()
	if err != nil {
		t.Fatal(err)
	}
	code, body := r.call(t, "POST", r.masURL+"_standin/oauth2-sessions", tok, map[string]any{"username": username})
	if code != 201 {
		t.Fatalf("MAS OAuth 2.0 login of %s: HTTP %d %v", username, code, body)
	}
	return resourceOf(body).ID, body["device_id"].(string), body["access_token"].(string)
}

// synapseDevices lists a user's device ids as Synapse has them.
func (r *rig) synapseDevices(t *testing.T, userID string) []string {
	t.Helper()
	code, d := r.synapse(t, "GET", "/_synapse/admin/v2/users/"+url.PathEscape(userID)+"/devices", nil)
	if code != 200 {
		t.Fatalf("synapse devices of %s: HTTP %d %v", userID, code, d)
	}
	var ids []string
	for _, x := range d["devices"].([]any) {
		ids = append(ids, x.(map[string]any)["device_id"].(string))
	}
	return ids
}
