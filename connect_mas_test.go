package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// masModeServer answers as a Synapse 1.160 that delegates to MAS: its auth
// metadata names an issuer, and /users/<id>/admin is unrecognised. It
// counts every request that could write.
func masModeServer(t *testing.T, writes *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/_matrix/client/v1/auth_metadata":
			w.Write([]byte(`{"issuer":"https://auth.example.test/","authorization_endpoint":"https://auth.example.test/authorize"}`))
		case r.URL.Path == "/_matrix/client/v3/account/whoami":
			w.Write([]byte(`{"user_id":"@admin:hs.test"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A server that delegates its accounts to MAS, and no MAS admin client
// given: exit 2 (a rerun cannot help, unlike exit 3), the message naming the
// flags, variables and config keys to set, and no request that writes.
func TestMASServerWithoutCredentialsExits2BeforeAnyWrite(t *testing.T) {
	dir := hermetic(t)
	var writes atomic.Int64
	srv := masModeServer(t, &writes)
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("syt_admin\n"), 0o600)
	manifest := filepath.Join(dir, "m.csv")
	os.WriteFile(manifest, []byte("user_id,displayname,password\nalice,Alice,Pw-long-enough-1\n"), 0o600)
	for _, args := range [][]string{
		{"apply", "--yes", "--server", srv.URL, "--token-file", tok, "--server-name", "hs.test", manifest},
		{"plan", "--server", srv.URL, "--token-file", tok, manifest},
		{"export", "users", "--server", srv.URL, "--token-file", tok, "--out", filepath.Join(dir, "u.csv")},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"synbatch"}, args...), strings.NewReader(""), &out, &errb)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d\n%s", args[0], code, exitUsage, errb.String())
		}
		for _, want := range []string{"https://auth.example.test/", "--mas-client-id", "--mas-client-secret-file", "SYNBATCH_MAS_CLIENT_ID", "SYNBATCH_MAS_CLIENT_SECRET_FILE", "mas_client_id:", "mas_client_secret_file:"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("%s: the message does not name %s:\n%s", args[0], want, errb.String())
			}
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d requests that could write were sent", n)
	}
}

// The MAS client secret is read only from a file others cannot read, and
// never shows in a message.
func TestMASSecretFileMustBePrivate(t *testing.T) {
	dir := hermetic(t)
	var writes atomic.Int64
	srv := masModeServer(t, &writes)
	sec := filepath.Join(dir, "secret")
	os.WriteFile(sec, []byte("very-secret-value\n"), 0o644)
	manifest := filepath.Join(dir, "m.csv")
	os.WriteFile(manifest, []byte("user_id,displayname\nalice,Alice\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"synbatch", "plan", "--server", srv.URL, "--server-name", "hs.test", "--mas-client-id", "c1", "--mas-client-secret-file", sec, manifest}, strings.NewReader(""), &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "chmod 600 "+sec) {
		t.Errorf("exit %d, want 2 with chmod advice:\n%s", code, errb.String())
	}
	if strings.Contains(errb.String()+out.String(), "very-secret-value") {
		t.Error("the secret is in the output")
	}
	if writes.Load() != 0 {
		t.Error("a request that could write was sent")
	}
}

// hermetic gives the test a home of its own and none of the caller's
// SYNBATCH_* settings.
func hermetic(t *testing.T) string {
	dir := t.TempDir()
	for _, k := range []string{"SYNBATCH_MAS_CLIENT_ID", "SYNBATCH_MAS_CLIENT_SECRET_FILE", "SYNBATCH_MAS_URL", "SYNBATCH_CONFIG", "SYNBATCH_TOKEN", "SYNBATCH_TOKEN_FILE", "SYNBATCH_SERVER", "SYNBATCH_SERVER_NAME"} {
		t.Setenv(k, "") // restored at the end; unset meanwhile
		os.Unsetenv(k)
	}
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	return dir
}
