package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type connKey struct{}

// TestHTTPSOnAPlainPortThatAnswersTheHelloIsNamed: a plain-HTTP port given
// as https:// that answers the TLS hello at once (a 400, which Go reports
// as "server gave HTTP response to HTTPS client") is still named as the
// wrong scheme, with the http:// URL to use, however the two attempts
// race: here the plain probe is answered only after the HTTPS attempt was
// refused (CI saw the raw error when Synapse answered the hello first).
func TestHTTPSOnAPlainPortThatAnswersTheHelloIsNamed(t *testing.T) {
	dir := hermetic(t)
	refused := make(chan struct{}) // the TLS hello's connection was answered and closed
	var once sync.Once
	var mu sync.Mutex
	served := map[net.Conn]bool{} // connections a request was read from
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/client/versions", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.Context().Value(connKey{}).(net.Conn)] = true
		mu.Unlock()
		select {
		case <-refused:
		case <-time.After(4 * time.Second): // the probe's own limit is 5 s
		}
		w.Write([]byte(`{"versions":["v1.11"]}`))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		// A connection closed that no handler served: the TLS hello the
		// server answered with a 400.
		if s == http.StateClosed && !served[c] {
			once.Do(func() { close(refused) })
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("syt_x\n"), 0o600)
	manifest := filepath.Join(dir, "m.csv")
	os.WriteFile(manifest, []byte("user_id,displayname\nalice,Alice\n"), 0o600)
	wrong := "https://" + strings.TrimPrefix(srv.URL, "http://")
	var out, errb bytes.Buffer
	code := run([]string{"synbatch", "plan", "--server", wrong, "--server-name", "hs.test", "--token-file", tok, manifest}, strings.NewReader(""), &out, &errb)
	if want := wrong + " answers plain HTTP, not HTTPS, on that port: use " + srv.URL; code != exitStopped || !strings.Contains(errb.String(), want) {
		t.Fatalf("exit %d, want %d and %q:\n%s", code, exitStopped, want, errb.String())
	}
}
