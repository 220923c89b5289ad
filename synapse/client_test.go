package synapse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"Thu, 01 Jan 2026 00:00:05 GMT": 5 * time.Second,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0,
		"soon":                          0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func TestErrorsAreClassified(t *testing.T) {
	for _, c := range []struct {
		status          int
		body, header    string
		retry, auth, nf bool
	}{
		{429, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":10}`, "", true, false, false},
		{429, `{"errcode":"M_UNKNOWN","error":"Rate limited"}`, "", false, false, false},
		{429, `{"errcode":"M_LIMIT_EXCEEDED"}`, "1", true, false, false},
		{503, `oops`, "", true, false, false},
		{401, `{"errcode":"M_UNKNOWN_TOKEN"}`, "", false, true, false},
		{403, `{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}`, "", false, true, false},
		{403, `{"errcode":"M_FORBIDDEN","error":"Password change disabled"}`, "", false, false, false},
		{404, `{"errcode":"M_NOT_FOUND"}`, "", false, false, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.header != "" {
				w.Header().Set("Retry-After", c.header)
			}
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		cl, _ := New(Config{Server: srv.URL, Token: "t"})
		_, err := cl.GetUser(context.Background(), "@a:b")
		srv.Close()
		if IsRetryable(err) != c.retry || IsAuth(err) != c.auth || IsNotFound(err) != c.nf {
			t.Errorf("%d %s: retry %v auth %v notfound %v (%v)", c.status, c.body, IsRetryable(err), IsAuth(err), IsNotFound(err), err)
		}
	}
}

func TestPathEscapesUserIDsAndExternalIDs(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath())
		w.WriteHeader(404)
	}))
	defer srv.Close()
	cl, _ := New(Config{Server: srv.URL, Token: "t"})
	cl.GetUser(context.Background(), "@a/../b:hs")
	cl.ExternalIDOwner(context.Background(), "oidc", "sub|x/y?z#w")
	want := []string{"/_synapse/admin/v2/users/@a%2F..%2Fb:hs", "/_synapse/admin/v1/auth_providers/oidc/users/sub%7Cx%2Fy%3Fz%23w"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("paths %q, want %q", got, want)
	}
}

func TestPauseHoldsEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
		cl, _ := New(Config{Server: "http://hs.test", Token: "t", Transport: fakesynapse.InMemory(h)})
		cl.Pause(150 * time.Millisecond)
		cl.Pause(10 * time.Millisecond) // an earlier end never shortens a pause
		start := time.Now()
		if _, err := cl.GetUser(context.Background(), "@a:b"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 140*time.Millisecond {
			t.Fatalf("request left after %v, during the pause", d)
		}
	})
}

// Without an idle timeout, connections the server closed while they sat in
// the pool (a restart, a proxy's own idle limit) must not fail the next
// requests.
func TestConnectionsTheServerClosedAreNotReused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"user_id":"@admin:hs.test"}`))
	}))
	defer srv.Close()
	c, err := New(Config{Server: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for range 8 {
			if _, err := c.Whoami(context.Background()); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		srv.CloseClientConnections()
	}
}
