package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/synbatch/synbatch/internal/masstandin"
)

// A name two of MAS's providers share (two Keycloaks with the brand
// "keycloak"), in a cell, in --auth-provider or in --match-by
// external_id:, with --allow-unknown-provider: plan and apply exit 2
// naming both candidates by id, and nothing is written to MAS or Synapse
// (MAS read back: the user has no link). The flag is for a provider about
// to be configured; which of two was meant cannot be known.
func TestMASAmbiguousProviderExits2EvenWithAllowUnknownProvider(t *testing.T) {
	dir := hermetic(t)
	const (
		kcProd    = "01JPR0V1DER0000000000000K1"
		kcStaging = "01JPR0V1DER0000000000000K2"
		client    = "01JCL1ENT000000000000000AD"
	)
	var masWrites, synWrites atomic.Int64
	var st *masstandin.Server
	mas := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/admin/v1/") {
			masWrites.Add(1)
		}
		st.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(mas.Close)
	var err error
	st, err = masstandin.New(masstandin.Config{Issuer: mas.URL + "/", ServerName: "hs.test", SharedSecret: "shared",
		AdminClients: map[string]string{client: "client-secret"},
		Providers: []masstandin.Provider{
			{ID: kcProd, HumanName: "Keycloak (prod)", BrandName: "keycloak", Issuer: "https://kc.invalid/prod/"},
			{ID: kcStaging, HumanName: "Keycloak (staging)", BrandName: "keycloak", Issuer: "https://kc.invalid/staging/"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	// MAS's admin API, as an admin uses it besides synbatch (not counted).
	call := func(req *http.Request, out any) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %v %v", req.Method, req.URL.Path, resp, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	admin := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", mas.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=urn:mas:admin"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(client, "client-secret")
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		call(req, &tok)
		req, _ = http.NewRequest(method, mas.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		var out map[string]any
		call(req, &out)
		return out
	}
	// alice exists before the runs: a run let through would link or lock her.
	alice := admin("POST", "/api/admin/v1/users", `{"username":"alice"}`)["data"].(map[string]any)["id"].(string)
	masWrites.Store(0)
	syn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			synWrites.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/_matrix/client/v1/auth_metadata":
			w.Write([]byte(`{"issuer":"` + mas.URL + `/"}`))
		case "/_matrix/client/v3/account/whoami":
			w.Write([]byte(`{"user_id":"@admin:hs.test"}`))
		case "/_synapse/admin/v2/users":
			w.Write([]byte(`{"users":[],"total":0}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
		}
	}))
	t.Cleanup(syn.Close)

	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("syt_admin\n"), 0o600)
	sec := filepath.Join(dir, "mas-secret")
	os.WriteFile(sec, []byte("client-secret\n"), 0o600)
	cell := filepath.Join(dir, "cell.csv")
	os.WriteFile(cell, []byte("action,user_id,external_ids\nset-external-ids,alice,keycloak:s1\n"), 0o600)
	bare := filepath.Join(dir, "bare.csv")
	os.WriteFile(bare, []byte("user_id,external_ids\nalice,s1\n"), 0o600)
	match := filepath.Join(dir, "match.csv")
	os.WriteFile(match, []byte("action,external_id\nlock,s1\n"), 0o600)
	conn := []string{"--server", syn.URL, "--server-name", "hs.test", "--token-file", tok, "--mas-client-id", client, "--mas-client-secret-file", sec, "--allow-unknown-provider"}
	for _, args := range [][]string{
		{"plan", cell},
		{"apply", "--yes", cell},
		{"apply", "--yes", "--action", "set-external-ids", "--auth-provider", "KEYCLOAK", bare},
		{"plan", "--match-by", "external_id:keycloak", match},
	} {
		var out, errb bytes.Buffer
		argv := append(append([]string{"synbatch", args[0]}, conn...), args[1:]...)
		code := run(argv, strings.NewReader(""), &out, &errb)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s\n%s", args, code, exitUsage, out.String(), errb.String())
			continue
		}
		for _, id := range []string{kcProd, kcStaging} {
			if !strings.Contains(errb.String(), id) {
				t.Errorf("%v: the message does not name the candidate %s: %s", args, id, errb.String())
			}
		}
		if !strings.Contains(errb.String(), "nothing was sent") {
			t.Errorf("%v: the message does not say nothing was sent: %s", args, errb.String())
		}
	}
	if links := admin("GET", "/api/admin/v1/upstream-oauth-links?filter[user]="+alice, "")["data"].([]any); len(links) != 0 {
		t.Errorf("MAS holds links of alice after refused runs: %v", links)
	}
	if n := masWrites.Load(); n != 0 {
		t.Errorf("%d writes reached MAS", n)
	}
	if n := synWrites.Load(); n != 0 {
		t.Errorf("%d requests that could write reached Synapse", n)
	}
}
