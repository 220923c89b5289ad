package export

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/internal/masstandin"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// tokensMAS is a MAS stand-in (in process) holding three tokens: live
// with a limit and an expiry, live and unlimited, and revoked.
func tokensMAS(t *testing.T) *mas.Client {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	st, err := masstandin.New(masstandin.Config{Issuer: issuer, ServerName: "hs", SharedSecret: "shared",
		AdminClients: map[string]string{"01JCL1ENT000000000000000AD": "client-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = st.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	m, err := mas.New(mas.Config{Issuer: issuer, ClientID: "01JCL1ENT000000000000000AD", ClientSecret: "client-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	five, exp := int64(5), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"tok-live", "tok-open", "tok-revoked"} {
		lim, e := &five, &exp
		if v == "tok-open" {
			lim, e = nil, nil
		}
		if err := m.CreateRegToken(ctx, v, lim, e); err != nil {
			t.Fatalf("create %s: %v", v, err)
		}
	}
	rev, err := m.RegTokenByValue(ctx, "tok-revoked")
	if err != nil || rev == nil {
		t.Fatalf("read tok-revoked: %v %v", rev, err)
	}
	if err := m.SetRegTokenRevoked(ctx, rev.ID, true); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMASTokenExportWritesRevokedTokensWithARevokedColumn: on MAS, every
// format the export writes holds every token, the revoked one too, with a
// revoked column that the manifest reader reads as true or false.
func TestMASTokenExportWritesRevokedTokensWithARevokedColumn(t *testing.T) {
	t.Parallel()
	m := tokensMAS(t)
	dir := t.TempDir()
	want := map[string]string{"tok-live": "false", "tok-open": "false", "tok-revoked": "true"}
	for _, ext := range []string{"csv", "tsv", "xlsx", "ods", "jsonl"} {
		out := filepath.Join(dir, "tokens."+ext)
		n, err := RegistrationTokens(context.Background(), nil, TokensConfig{Out: out, MAS: m})
		if err != nil || n != len(want) {
			t.Fatalf("%s: export wrote %d tokens, %v; want %d", ext, n, err, len(want))
		}
		got := readTokenColumn(t, out, "revoked")
		if len(got) != len(want) {
			t.Errorf("%s: tokens %v, want %v", ext, got, want)
		}
		for tok, w := range want {
			if got[tok] != w {
				t.Errorf("%s: %s revoked=%q, want %q", ext, tok, got[tok], w)
			}
		}
		if lim := readTokenColumn(t, out, "uses_allowed"); lim["tok-revoked"] != "5" || lim["tok-open"] != "" {
			t.Errorf("%s: uses_allowed %v", ext, lim)
		}
	}
}

// TestSynapseTokenExportHasNoRevokedColumn: a plain Synapse revokes no
// token, so its export keeps the columns it had, without revoked.
func TestSynapseTokenExportHasNoRevokedColumn(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_synapse/admin/v1/registration_tokens" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"registration_tokens": []map[string]any{
			{"token": "tok-a", "uses_allowed": 5, "pending": 0, "completed": 1, "expiry_time": nil}}})
	}))
	t.Cleanup(srv.Close)
	c, err := synapse.New(synapse.Config{Server: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if _, err := RegistrationTokens(context.Background(), c, TokensConfig{Out: "-", Format: "csv", Stdout: &b}); err != nil {
		t.Fatal(err)
	}
	if want := "action,token,uses_allowed,expiry_time,pending,completed\nregistration-token,tok-a,5,,0,1\n"; b.String() != want {
		t.Errorf("export:\n%s\nwant:\n%s", b.String(), want)
	}
}

// readTokenColumn reads an exported manifest back with synbatch's reader
// and maps each token to its cell in column ("" when empty).
func readTokenColumn(t *testing.T, path, column string) map[string]string {
	t.Helper()
	r, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]string{}
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if row.Fields["action"].Value != "registration-token" {
			t.Errorf("%s row %d: action %q", path, row.Num, row.Fields["action"].Value)
		}
		out[row.Fields["token"].Value] = row.Fields[column].Value
	}
}
