package mas

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tinyMAS serves the few MAS endpoints these tests need, as MAS's spec
// says: tokens that end by the test clock (a request with an ended token
// gets 401), users by username, and a user list paged by cursor.
type tinyMAS struct {
	clk     *clock
	ttl     time.Duration
	mu      sync.Mutex
	tokens  map[string]time.Time
	issued  atomic.Int64
	refused atomic.Int64
	users   []string // usernames, in id order
	secret  string
}

func (m *tinyMAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/.well-known/openid-configuration":
		fmt.Fprintf(w, `{"issuer":"http://%s/","token_endpoint":"http://%s/oauth2/token"}`, r.Host, r.Host)
		return
	case r.URL.Path == "/oauth2/token":
		id, sec, ok := r.BasicAuth()
		if !ok || id != "synbatch" || sec != m.secret || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != AdminScope {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		n := m.issued.Add(1)
		tok := "mat_" + strconv.FormatInt(n, 10)
		m.mu.Lock()
		m.tokens[tok] = m.clk.Now().Add(m.ttl)
		m.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, int(m.ttl/time.Second))
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	m.mu.Lock()
	end, ok := m.tokens[tok]
	m.mu.Unlock()
	// MAS's clock runs 10s ahead of ours: a token used in its last
	// seconds by our clock has ended by MAS's.
	if !ok || !m.clk.Now().Add(10*time.Second).Before(end) {
		m.refused.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"title":"Invalid access token"}]}`)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/admin/v1/users/by-username/"):
		name := strings.TrimPrefix(r.URL.Path, "/api/admin/v1/users/by-username/")
		for i, u := range m.users {
			if u == name {
				fmt.Fprintf(w, `{"data":{"type":"user","id":"%026d","attributes":{"username":%q,"created_at":"2026-01-01T00:00:00Z","locked_at":null,"deactivated_at":null,"admin":%t,"legacy_guest":false}},"links":{"self":"x"}}`, i, u, i == 0)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"errors":[{"title":"User with username %q not found"}]}`, name)
	case r.URL.Path == "/api/admin/v1/users":
		n, _ := strconv.Atoi(r.URL.Query().Get("page[first]"))
		if n == 0 {
			n = 10
		}
		start := 0
		if a := r.URL.Query().Get("page[after]"); a != "" {
			i, _ := strconv.Atoi(a)
			start = i + 1
		}
		var data []string
		for i := start; i < len(m.users) && len(data) < n; i++ {
			data = append(data, fmt.Sprintf(`{"type":"user","id":"%026d","attributes":{"username":%q,"created_at":"2026-01-01T00:00:00Z","admin":false,"legacy_guest":false},"meta":{"page":{"cursor":"%026d"}}}`, i, m.users[i], i))
		}
		next := ""
		if start+len(data) < len(m.users) {
			next = `,"next":"/api/admin/v1/users?page[after]=x"`
		}
		fmt.Fprintf(w, `{"meta":{"count":%d},"data":[%s],"links":{"self":"x"%s}}`, len(m.users), strings.Join(data, ","), next)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[{"title":"Not found"}]}`)
	}
}

func newTiny(t *testing.T, ttl time.Duration, users int) (*tinyMAS, *Client) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := &tinyMAS{clk: clk, ttl: ttl, tokens: map[string]time.Time{}, secret: "s3cret-value"}
	for i := range users {
		m.users = append(m.users, fmt.Sprintf("user%03d", i))
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	c, err := New(Config{Issuer: srv.URL + "/", ClientID: "synbatch", ClientSecret: m.secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// A token that lives a minute is renewed before it ends: across three and
// a half minutes of requests (the clock moved 7s between them), with MAS's
// clock 10s ahead, none goes out with a token MAS has ended.
func TestTokenRenewedBeforeExpiryNoRequestRefused(t *testing.T) {
	m, c := newTiny(t, time.Minute, 3)
	ctx := context.Background()
	for i := range 30 {
		u, err := c.UserByUsername(ctx, "user001")
		if err != nil || u == nil || u.Username != "user001" {
			t.Fatalf("request %d: %v %+v", i, err, u)
		}
		m.clk.Add(7 * time.Second)
	}
	if m.refused.Load() != 0 {
		t.Errorf("%d requests went out with an ended token", m.refused.Load())
	}
	if n := m.issued.Load(); n < 4 || n > 6 {
		t.Errorf("%d tokens fetched over 210s of 1-minute tokens, want about 5", n)
	}
}

// A token MAS ends early (401) is replaced and the request tried once more.
func TestRefusedTokenReplacedOnce(t *testing.T) {
	m, c := newTiny(t, time.Hour, 2)
	ctx := context.Background()
	if _, err := c.UserByUsername(ctx, "user000"); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	clear(m.tokens)
	m.mu.Unlock()
	u, err := c.UserByUsername(ctx, "user000")
	if err != nil || u == nil || !u.Admin || u.ID == "" {
		t.Fatalf("after a revoked token: %v %+v", err, u)
	}
	if m.issued.Load() != 2 {
		t.Errorf("tokens issued %d, want 2", m.issued.Load())
	}
}

// Bad client credentials are an auth error (the run stops), naming what to
// check and never the secret.
func TestBadCredentialsStopAndNeverShowSecret(t *testing.T) {
	m, _ := newTiny(t, time.Hour, 1)
	srv := httptest.NewServer(m)
	defer srv.Close()
	c, err := New(Config{Issuer: srv.URL, ClientID: "synbatch", ClientSecret: "wrong-secret-xyz"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UserByUsername(context.Background(), "user000")
	if !synapse.IsAuth(err) {
		t.Fatalf("want an auth error, got %v", err)
	}
	if !strings.Contains(err.Error(), "--mas-client-secret-file") || strings.Contains(err.Error(), "wrong-secret-xyz") {
		t.Errorf("error %q: want the flags named and no secret", err)
	}
}

// A missing user is nil; MAS's {"errors":[…]} becomes the error message.
func TestNotFoundAndErrorBody(t *testing.T) {
	_, c := newTiny(t, time.Hour, 1)
	u, err := c.UserByUsername(context.Background(), "nobody")
	if err != nil || u != nil {
		t.Fatalf("missing user: %v %+v", err, u)
	}
	_, err = c.Emails(context.Background(), "x")
	var se *synapse.Error
	if !asErr(err, &se) || se.Status != 404 || se.Message != "Not found" {
		t.Fatalf("error body not read: %#v", err)
	}
}

func asErr(err error, se **synapse.Error) bool {
	e, ok := err.(*synapse.Error)
	if ok {
		*se = e
	}
	return ok
}

// The user list pages by cursor until links.next is gone: 25 users in
// pages of 10 come back once each, in order.
func TestUsersPagedByCursor(t *testing.T) {
	_, c := newTiny(t, time.Hour, 25)
	var got []string
	after := ""
	pages := 0
	for {
		us, next, err := c.UsersPage(context.Background(), "", after, 10)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, u := range us {
			got = append(got, u.Username)
		}
		if next == "" {
			break
		}
		after = next
	}
	if pages != 3 || len(got) != 25 || got[0] != "user000" || got[24] != "user024" {
		t.Fatalf("pages %d, users %d: %v", pages, len(got), got)
	}
	b, _ := json.Marshal(got)
	if strings.Count(string(b), "user010") != 1 {
		t.Errorf("user010 not exactly once: %s", b)
	}
}

// roundTrip serves requests with a handler in memory: inside a synctest
// bubble no real connection may be waited on.
type roundTrip struct{ h http.Handler }

func (rt roundTrip) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	rt.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// timedMAS stamps each request it serves with the (bubble's) time.
type timedMAS struct {
	*tinyMAS
	mu    sync.Mutex
	times []time.Time
}

func (m *timedMAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.times = append(m.times, time.Now())
	m.mu.Unlock()
	m.tinyMAS.ServeHTTP(w, r)
}

// TestRateCapsRequestsToMAS: --rate caps MAS's requests as it caps
// Synapse's. At 2 a second (a bucket of 1), request n goes no earlier
// than (n-1)/2 seconds in, token fetches included; without a rate they
// all go at once.
func TestRateCapsRequestsToMAS(t *testing.T) {
	for _, perSecond := range []float64{2, 0} {
		synctest.Test(t, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			m := &timedMAS{tinyMAS: &tinyMAS{clk: clk, ttl: time.Hour, tokens: map[string]time.Time{}, secret: "s3cret-value", users: []string{"user000"}}}
			c, err := New(Config{Issuer: "http://mas.test/", ClientID: "synbatch", ClientSecret: m.secret, Now: clk.Now,
				Transport: roundTrip{m}, Rate: perSecond, Burst: 1})
			if err != nil {
				t.Fatal(err)
			}
			// One after another: a worker waiting on the client's token
			// lock is not durably blocked, and the bubble's clock would
			// never move.
			start := time.Now()
			for range 8 {
				if _, err := c.UserByUsername(context.Background(), "user000"); err != nil {
					t.Fatal(err)
				}
			}
			if len(m.times) < 9 {
				t.Fatalf("%d requests, want 8 and the token's", len(m.times))
			}
			elapsed := m.times[len(m.times)-1].Sub(start)
			if perSecond == 0 {
				if elapsed != 0 {
					t.Errorf("no rate: the requests took %s", elapsed)
				}
				return
			}
			for i, at := range m.times {
				if window := at.Sub(start); float64(i) > 1+perSecond*window.Seconds() {
					t.Errorf("request %d went at %s: more than %g a second", i+1, window, perSecond)
				}
			}
		})
	}
}

// An OAuth 2.0 session's device is in its scope, under the stable or the
// MSC2967 prefix; a scope without one names none.
func TestScopeDeviceReadsTheDeviceScope(t *testing.T) {
	for scope, want := range map[string]string{
		"openid urn:matrix:client:api:* urn:matrix:client:device:ABCDEF":                             "ABCDEF",
		"urn:matrix:org.matrix.msc2967.client:device:XYZ urn:matrix:org.matrix.msc2967.client:api:*": "XYZ",
		"urn:matrix:client:api:* urn:synapse:admin:*":                                                "",
		"urn:matrix:client:device:":                                                                  "",
		"":                                                                                           "",
	} {
		if got := scopeDevice(scope); got != want {
			t.Errorf("scopeDevice(%q) = %q, want %q", scope, got, want)
		}
	}
}
