// Package mas is a typed client for the admin API of the Matrix
// Authentication Service (MAS), the server a homeserver delegates its
// accounts to when it runs with MSC3861. It follows MAS v1.22.0's published
// OpenAPI document (docs/api/spec.json) and docs/topics/admin-api.md:
// resources in JSON:API shapes, cursor paging, errors as {"errors":[…]},
// and an admin token from the OAuth 2.0 client-credentials grant for the
// urn:mas:admin scope, which lives minutes and is renewed before it ends.
//
// Its errors are synapse.Error and synapse.NetError, so that the run's one
// retry loop (synapse.Retry) and its rules (what is retried, what leaves a
// write uncertain, what stops the run) hold for MAS as for Synapse.
package mas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/synbatch/synbatch/synapse"
)

// AdminScope is the scope of MAS's admin API.
const AdminScope = "urn:mas:admin"

// SynapseAdminScope is the scope that makes a token a Synapse admin's on a
// homeserver that delegates to MAS (with the client API's).
const SynapseAdminScope = "urn:matrix:client:api:* urn:synapse:admin:*"

// Config says how to reach MAS and as which client.
type Config struct {
	// Issuer is MAS's issuer, as the homeserver's auth metadata names it;
	// the token endpoint is read from its discovery document.
	Issuer string
	// BaseURL is where the admin API is served ("" means the issuer).
	BaseURL      string
	ClientID     string
	ClientSecret string
	Timeout      time.Duration // per request; 0 means 60s
	UserAgent    string
	// Transport carries the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock tokens are judged by; nil means time.Now.
	Now func() time.Time
	// Rate caps the requests a second to MAS over all workers (--rate,
	// which caps Synapse's the same way: MAS is a server of its own, with
	// a budget of its own); 0 sets no cap. Burst is the limiter's bucket.
	Rate  float64
	Burst int
}

// Client talks to one MAS as one admin client. It is safe for concurrent use.
type Client struct {
	issuer, base string
	id, secret   string
	http         *http.Client
	ua           string
	now          func() time.Time
	limiter      *rate.Limiter // nil: no cap

	tokMu      sync.Mutex // guards tok, tokEnd and discovered
	discovered discovery
	tok        string
	tokEnd     time.Time

	requests, writes, tokens atomic.Int64
}

type discovery struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	Revocation    string `json:"revocation_endpoint"`
}

// New builds a client; it sends nothing yet.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("MAS client id and secret are both needed")
	}
	base := strings.TrimRight(cmpOr(cfg.BaseURL, cfg.Issuer), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("MAS URL %q: want a URL like https://auth.example.org", base)
	}
	rt := cfg.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{issuer: strings.TrimRight(cmpOr(cfg.Issuer, base), "/"), base: base, id: cfg.ClientID, secret: cfg.ClientSecret,
		http: &http.Client{Transport: rt, Timeout: timeout}, ua: cmpOr(cfg.UserAgent, "synbatch"), now: now}
	if cfg.Rate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(cfg.Burst, 1))
	}
	return c, nil
}

// Issuer is MAS's issuer URL.
func (c *Client) Issuer() string { return c.issuer }

// Requests is how many admin API requests the client sent; Writes how many
// of them could change something; Tokens how many tokens it fetched.
func (c *Client) Requests() int64 { return c.requests.Load() }
func (c *Client) Writes() int64   { return c.writes.Load() }
func (c *Client) Tokens() int64   { return c.tokens.Load() }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// discover reads the issuer's OpenID configuration, for the token and
// revocation endpoints; MAS's own paths are the fallback. A failure is not
// kept: a later row may find MAS back. The caller holds tokMu.
func (c *Client) discover(ctx context.Context) (discovery, error) {
	if c.discovered.TokenEndpoint != "" {
		return c.discovered, nil
	}
	var d discovery
	_, err := c.raw(ctx, http.MethodGet, c.issuer+"/.well-known/openid-configuration", "", nil, "", &d)
	if err != nil && !synapse.IsNotFound(err) {
		return discovery{}, fmt.Errorf("read MAS's OpenID configuration: %w", err)
	}
	d.TokenEndpoint = cmpOr(d.TokenEndpoint, c.base+"/oauth2/token")
	d.Revocation = cmpOr(d.Revocation, c.base+"/oauth2/revoke")
	c.discovered = d
	return d, nil
}

// renewBefore is how long before its end a token is replaced, so that no
// request leaves with a token that ends on the way; a short-lived token
// is replaced after three quarters of its life.
func renewBefore(life time.Duration) time.Duration {
	return min(30*time.Second, life/4)
}

// token returns a valid admin token, fetching a new one when none is held
// or the one held is about to end. Only one fetch runs at a time; the
// others wait for it.
func (c *Client) token(ctx context.Context) (string, error) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.tok != "" && c.now().Before(c.tokEnd) {
		return c.tok, nil
	}
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {AdminScope}}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	start := c.now()
	_, err = c.raw(ctx, http.MethodPost, d.TokenEndpoint, "", []byte(form.Encode()), "application/x-www-form-urlencoded", &out)
	if err != nil {
		var se *synapse.Error
		if errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusBadRequest || se.Status == http.StatusForbidden) {
			// Every later request would be refused the same way: the run stops.
			return "", &synapse.Error{Method: se.Method, Path: se.Path, Status: http.StatusUnauthorized,
				Message: "MAS refused the client credentials for scope " + AdminScope + " (" + se.Message + "): check --mas-client-id and --mas-client-secret-file, and that the client is in MAS's policy.data.admin_clients"}
		}
		return "", fmt.Errorf("get a MAS admin token: %w", err)
	}
	if out.AccessToken == "" {
		return "", errors.New("get a MAS admin token: the answer holds no access_token")
	}
	c.tokens.Add(1)
	life := time.Duration(out.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute // MAS always says; be safe if not
	}
	c.tok, c.tokEnd = out.AccessToken, start.Add(life-renewBefore(life))
	return c.tok, nil
}

// dropToken forgets tok (refused by MAS) so the next request fetches anew.
func (c *Client) dropToken(tok string) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.tok == tok {
		c.tok = ""
	}
}

// do sends one admin API request with the admin token: path is under
// /api/admin/v1 and already escaped. A 401 (a token MAS ended early, or a
// clock that runs differently from MAS's) is answered by one new token and
// one more try: a write refused for its token did nothing.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = b
	}
	for try := 0; ; try++ {
		tok, err := c.token(ctx)
		if err != nil {
			return 0, err
		}
		c.requests.Add(1)
		if method != http.MethodGet {
			c.writes.Add(1)
		}
		ctype := ""
		if body != nil {
			ctype = "application/json"
		}
		status, err := c.raw(ctx, method, c.base+"/api/admin/v1"+path, tok, body, ctype, out)
		if status == http.StatusUnauthorized && try == 0 {
			c.dropToken(tok)
			continue
		}
		return status, err
	}
}

// raw sends one request to full URL u. Errors carry the path only, never
// the query (it may hold an address) nor any header.
func (c *Client) raw(ctx context.Context, method, u, token string, body []byte, ctype string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, shortPath(u), err)
	}
	path := req.URL.EscapedPath()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if method == http.MethodPost && ctype == "application/x-www-form-urlencoded" {
		// client_secret_basic: the secret goes in a header no log prints,
		// never in a body a -vv log would show.
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, synapse.NetErrorOf(method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, &synapse.NetError{Method: method, Path: path, Sent: true, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, answerError(method, path, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func shortPath(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.EscapedPath()
	}
	return "(bad URL)"
}

// answerError reads MAS's {"errors":[{"title":…}]} (or OAuth's
// {"error":…,"error_description":…}) into a synapse.Error.
func answerError(method, path string, status int, data []byte) error {
	e := &synapse.Error{Method: method, Path: path, Status: status}
	var eb struct {
		Errors []struct {
			Title string `json:"title"`
		} `json:"errors"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(data, &eb) == nil {
		var titles []string
		for _, t := range eb.Errors {
			titles = append(titles, t.Title)
		}
		e.Message = strings.Join(titles, "; ")
		if e.Message == "" && eb.Error != "" {
			e.Message = strings.TrimSpace(eb.Error + ": " + eb.Description)
		}
	} else {
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	return e
}

// IsConflict reports whether err is MAS's 409: the thing exists already
// (a username, an address another user holds, a subject linked elsewhere).
func IsConflict(err error) bool {
	var e *synapse.Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}
