package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/internal/masstandin"
)

// TestBootstrapWritesAWorkingSynapseAdminToken runs bootstrap against a
// stand-in twice (as two `scripts/synapse --mas up` would): the admin is
// made once, gets MAS's admin flag, and each run leaves a 0600 token whose
// introspection (as Synapse asks) is the admin with urn:synapse:admin:*.
func TestBootstrapWritesAWorkingSynapseAdminToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("shared.secret", "the-shared-secret\n")
	write("client.secret", "the-client-secret\n")
	write("admin.password", "the admin's password\n")

	// The server's issuer is only known once it listens: start it on a
	// handler that is filled in after the config is written.
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer ts.Close()
	cfgJSON, _ := json.Marshal(map[string]any{
		"issuer": ts.URL + "/", "shared_secret_file": "shared.secret", "server_name": "synbatch.test",
		"admin_clients": []map[string]string{{"id": "01JSYNBATCH0TESTADM0000001", "secret_file": "client.secret"}},
		"state_file":    "state.json",
	})
	write("mas.json", string(cfgJSON))
	cfg, client, err := loadConfig(filepath.Join(dir, "mas.json"))
	if err != nil {
		t.Fatal(err)
	}
	if client != "01JSYNBATCH0TESTADM0000001" || cfg.AdminClients[client] != "the-client-secret" || cfg.SharedSecret != "the-shared-secret" ||
		cfg.StateFile != filepath.Join(dir, "state.json") {
		t.Fatalf("config read as %+v (client %q)", cfg, client)
	}
	s, err := masstandin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h = s.Handler()

	tokenFile := filepath.Join(dir, "admin.token")
	for run := 1; run <= 2; run++ {
		if err := bootstrap([]string{"-config", filepath.Join(dir, "mas.json"), "-admin", "admin",
			"-password-file", filepath.Join(dir, "admin.password"), "-token-out", tokenFile}); err != nil {
			t.Fatalf("bootstrap run %d: %v", run, err)
		}
		fi, err := os.Stat(tokenFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("token file after run %d: %v, mode %v", run, err, fi.Mode())
		}
		tok, _ := os.ReadFile(tokenFile)
		req, _ := http.NewRequest("POST", ts.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {strings.TrimSpace(string(tok))}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer the-shared-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var in map[string]any
		json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if in["active"] != true || in["username"] != "admin" || !strings.Contains(in["scope"].(string), masstandin.ScopeSynapseAdmin) {
			t.Fatalf("run %d: the token introspects as %v", run, in)
		}
	}
	// One admin, with the admin flag, whose password logs in through MAS.
	req, _ := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=urn%3Amas%3Aadmin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, "the-client-secret")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if _, err := doJSON(http.DefaultClient, req, &tok); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/api/admin/v1/users", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	var users struct {
		Data []struct {
			Attributes struct {
				Username string `json:"username"`
				Admin    bool   `json:"admin"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if _, err := doJSON(http.DefaultClient, req, &users); err != nil {
		t.Fatal(err)
	}
	if len(users.Data) != 1 || users.Data[0].Attributes.Username != "admin" || !users.Data[0].Attributes.Admin {
		t.Fatalf("MAS's users after two bootstraps: %+v", users.Data)
	}
	resp, err := http.Post(ts.URL+"/_matrix/client/v3/login", "application/json", strings.NewReader(
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"admin"},"password":"the admin's password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the admin's password through MAS: HTTP %d", resp.StatusCode)
	}
}
