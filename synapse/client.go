// Package synapse is a typed client for the parts of Synapse's Admin API that
// synbatch uses. Every request waits on one shared pacer, so a 429 seen by one
// worker pauses them all, and on one rate limiter, so --rate caps the whole run.
package synapse

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/synbatch/synbatch/internal/adaptive"
)

// Config says how to reach the server.
type Config struct {
	Server    string        // base URL, e.g. https://matrix.example.org
	AdminPath string        // "/_synapse/admin" unless a proxy moves it
	Token     string        // an admin's access token
	Insecure  bool          // skip TLS verification (never the default)
	CAFile    string        // extra CA certificates (PEM)
	Timeout   time.Duration // per request
	Rate      float64       // requests per second over all workers; 0 lifts the limit
	Burst     int
	MaxConns  int // connections kept open to the server
	UserAgent string
	// Debug receives a line per request (DebugLevel 1) and redacted bodies
	// (DebugLevel 2); nil logs nothing.
	Debug      io.Writer
	DebugLevel int
	// Transport, when set, carries the requests instead of a pooled HTTP
	// transport: tests give one that calls a handler in memory, so their
	// clock can be testing/synctest's.
	Transport http.RoundTripper
}

// Client talks to one homeserver. It is safe for concurrent use.
type Client struct {
	*shared
	// inFlight bounds this client's requests (WithInFlight); nil: no
	// bound of its own.
	inFlight *adaptive.Limit
}

// shared is what every Client made from one New shares: the connections,
// the rate limit, the pause after a 429 and the counters.
type shared struct {
	base      string
	adminPath string
	token     string
	http      *http.Client
	limiter   *rate.Limiter
	userAgent string

	// pauseUntil is a UnixNano time that only moves later: after a 429 no
	// request leaves until it has passed (rate.Limiter cannot express a pause).
	pauseUntil atomic.Int64
	requests   atomic.Int64
	writes     atomic.Int64
	// failing counts requests in a row that got no HTTP answer at all.
	failing atomic.Int64

	// self caches Self's answer: the token's user does not change.
	selfMu sync.Mutex
	self   string
}

// Failing is how many requests in a row got no answer from the server.
func (c *Client) Failing() int64 { return c.failing.Load() }

// Probe asks the server whether it is up, without the rate limiter or the
// pause: it is what decides when they may resume.
func (c *Client) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+c.adminPath+"/v1/server_version", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return stripURL(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 5 {
		return fmt.Errorf("server answers %d", resp.StatusCode)
	}
	c.failing.Store(0)
	return nil
}

// New builds a client from cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want a URL like https://matrix.example.org", cfg.Server)
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // only with --insecure, which warns
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	conns := max(cfg.MaxConns, 4)
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		// No idle timeout: a run keeps its few connections to one server
		// busy, and with one every request read the clock and reset a
		// timer under the pool's lock (a tenth of the client's HTTP cost
		// in the overhead benchmark). A connection the server closes
		// leaves the pool as soon as its reader sees the close.
		IdleConnTimeout:     0,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	var rt http.RoundTripper = tr
	if cfg.Transport != nil {
		rt = cfg.Transport
	}
	if cfg.Debug != nil && cfg.DebugLevel > 0 {
		rt = &debugTransport{next: rt, out: cfg.Debug, level: cfg.DebugLevel}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), max(cfg.Burst, 1))
	}
	admin := cfg.AdminPath
	if admin == "" {
		admin = "/_synapse/admin"
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "synbatch"
	}
	return &Client{shared: &shared{
		base:      u.String(),
		adminPath: "/" + strings.Trim(admin, "/"),
		token:     cfg.Token,
		http:      &http.Client{Transport: rt, Timeout: timeout},
		limiter:   lim,
		userAgent: ua,
	}}, nil
}

// Requests is how many requests the client has sent.
func (c *Client) Requests() int64 { return c.requests.Load() }

// Base returns the server's base URL.
func (c *Client) Base() string { return c.base }

// Writes is how many of them could change something (all but GET).
func (c *Client) Writes() int64 { return c.writes.Load() }

// Pause stops every request until d has passed (a later pause wins).
func (c *Client) Pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.pauseUntil.Load()
		if cur >= until || c.pauseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (c *Client) wait(ctx context.Context) error {
	for {
		until := c.pauseUntil.Load()
		d := time.Until(time.Unix(0, until))
		if d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if ctx.Value(unlimited{}) != nil {
		return nil
	}
	return c.limiter.Wait(ctx)
}

// unlimited marks the context of a request that skips the rate limiter.
type unlimited struct{}

// doUnlimited is do without the rate limiter (the pause after a 429 still
// holds it). It is for polling a long-running server task, paced by its
// caller: a row waiting minutes for a room deletion must not spend the
// --rate budget the other rows share.
func (c *Client) doUnlimited(ctx context.Context, method, path string, in, out any) (int, error) {
	return c.do(context.WithValue(ctx, unlimited{}, true), method, path, in, out)
}

// WithInFlight returns a client whose requests are bounded by lim: each
// waits for room in it and tells it how long the server took and whether
// it was overloaded (a 429, a 5xx, no answer), so an adaptive limit follows
// the server. It shares c's connections, rate limit, pause after a 429 and
// counters; c itself stays unbounded by lim. The exports use it for all
// their requests; apply limits rows.
func (c *Client) WithInFlight(lim *adaptive.Limit) *Client {
	return &Client{shared: c.shared, inFlight: lim}
}

// Error is an answer from Synapse other than 2xx.
type Error struct {
	Method     string
	Path       string
	Status     int
	Errcode    string
	Message    string
	RetryAfter time.Duration // from retry_after_ms or Retry-After, on a 429
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Errcode != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Errcode, msg)
	}
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// NetError is a request that got no HTTP answer. Sent says whether the
// request may have reached the server, so a write's outcome is uncertain.
type NetError struct {
	Method, Path string
	Sent         bool
	Err          error
}

func (e *NetError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Err) }
func (e *NetError) Unwrap() error { return e.Err }

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsUnrecognized reports whether the server does not know the endpoint at
// all (as with Matrix Authentication Service, which removes some of them).
func IsUnrecognized(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed) && e.Errcode == "M_UNRECOGNIZED"
}

// IsAuth reports whether err means the token is no longer good enough for
// the Admin API: every later request would fail the same way.
func IsAuth(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Status == http.StatusUnauthorized {
		return true
	}
	return e.Status == http.StatusForbidden && strings.Contains(e.Message, "not a server admin")
}

// Again marks a refusal that planning the row again may settle: the
// server's state moved under the plan (an account a create found missing
// appeared meanwhile, which a killed run's or a lost answer's create still
// landing does). IsRetryable reports it so; Err is the server's answer.
type Again struct{ Err error }

func (a *Again) Error() string { return a.Err.Error() }
func (a *Again) Unwrap() error { return a.Err }

// IsRetryable reports whether trying again later may succeed: rate limits
// with a hint, gateway errors, lost connections and Again. A 429 without a
// hint and errcode M_UNKNOWN comes from a spam checker and would be
// refused again.
func IsRetryable(err error) bool {
	var a *Again
	if errors.As(err, &a) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusTooManyRequests:
			return !(e.Errcode == "M_UNKNOWN" && e.RetryAfter == 0)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError:
			return true
		}
		return false
	}
	var n *NetError
	return errors.As(err, &n)
}

// Uncertain reports whether err leaves it unknown if a write was applied.
func Uncertain(err error) bool {
	var n *NetError
	if errors.As(err, &n) {
		return n.Sent
	}
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusBadGateway || e.Status == http.StatusGatewayTimeout || e.Status == http.StatusInternalServerError)
}

// do sends one request with the admin's token; path is already escaped.
// out may be nil.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	return c.send(ctx, call{method: method, path: path, in: in, out: out, token: c.token, sharedPause: true})
}

// doSecret is do for a path that holds a credential (a registration
// token): the path is sent as it is, but every log line and error shows it
// with the secret replaced, so it never reaches -v output, the journal or
// a report.
func (c *Client) doSecret(ctx context.Context, method, path, secret string, in, out any) (int, error) {
	return c.send(ctx, call{method: method, path: path, in: in, out: out, token: c.token, sharedPause: true, secret: secret})
}

// call is one request. sharedPause makes a 429 with a hint pause every
// request of the run; without it the caller handles the 429 alone.
type call struct {
	method, path string
	in, out      any
	token        string // "" sends no Authorization header
	sharedPause  bool
	// secret is a credential inside path: logs and errors show path
	// without it.
	secret string
}

// secretCall tells the debug log of a request whose path holds a
// credential how to show the path, and what to hide in its bodies.
type secretCall struct{ shown, secret string }

// shown is the call's path without its secret.
func (k call) shown() string {
	if k.secret == "" {
		return k.path
	}
	return strings.ReplaceAll(strings.ReplaceAll(k.path, url.PathEscape(k.secret), "[redacted]"), k.secret, "[redacted]")
}

func (c *Client) send(ctx context.Context, k call) (status int, err error) {
	// path, in every message below, is the path as shown: without a
	// secret; the request itself goes to k.path.
	method, path, in, out := k.method, k.shown(), k.in, k.out
	if k.secret != "" {
		ctx = context.WithValue(ctx, secretCall{}, secretCall{shown: path, secret: k.secret})
	}
	if err := c.wait(ctx); err != nil {
		return 0, err
	}
	if lim := c.inFlight; lim != nil {
		if err := lim.Acquire(ctx); err != nil {
			return 0, err
		}
		start := time.Now()
		defer func() {
			lim.Release(time.Since(start), IsNet(err) || status == http.StatusTooManyRequests || status/100 == 5)
		}()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+k.path, body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.requests.Add(1)
	if method != http.MethodGet {
		c.writes.Add(1)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c.failing.Add(1)
		return 0, &NetError{Method: method, Path: path, Sent: wasSent(err), Err: stripURL(err)}
	}
	// A reverse proxy answers 502/503/504 while Synapse restarts: for
	// deciding whether the server is away they count as no answer.
	if gatewayStatus(resp.StatusCode) {
		c.failing.Add(1)
	} else {
		c.failing.Store(0)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, &NetError{Method: method, Path: path, Sent: true, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		err := c.answerError(method, path, resp, data, k.sharedPause)
		if k.secret != "" {
			// Synapse repeats the token in its message ("No such
			// registration token: …").
			err.Message = strings.ReplaceAll(err.Message, k.secret, "[redacted]")
		}
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// answerError turns a non-2xx answer into an *Error and, after a 429 with
// a hint, pauses every request.
func (c *Client) answerError(method, path string, resp *http.Response, data []byte, sharedPause bool) *Error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	var eb struct {
		Errcode      string `json:"errcode"`
		Error        string `json:"error"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	if json.Unmarshal(data, &eb) == nil {
		e.Errcode, e.Message = eb.Errcode, eb.Error
		e.RetryAfter = time.Duration(eb.RetryAfterMS) * time.Millisecond
	} else {
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if e.RetryAfter == 0 {
			e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		if e.RetryAfter > 0 && sharedPause {
			c.Pause(e.RetryAfter)
		}
	}
	return e
}

// IsPacing reports whether err is a 429 that says how long to wait: the
// server pacing its clients, which every request already waits out.
func IsPacing(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusTooManyRequests && e.RetryAfter > 0
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// wasSent guesses whether a failed request may have reached the server: a
// refused or unresolvable connection never did, nor one whose TLS handshake
// failed (no request byte is sent before it completes); a timeout or reset
// may have.
func wasSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	var cert *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	if errors.As(err, &cert) || errors.As(err, &rec) || errors.As(err, &alert) || errors.As(err, &unknown) || errors.As(err, &host) {
		return false
	}
	// net/http's own handshake timeout has no type of its own.
	return !strings.Contains(err.Error(), "TLS handshake timeout")
}

// gatewayStatus is an answer a reverse proxy gives when it cannot reach
// Synapse (or gave up waiting for it).
func gatewayStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// IsNet reports whether err is a lost connection (no answer from the server).
func IsNet(err error) bool {
	var n *NetError
	return errors.As(err, &n)
}

// IsGateway reports whether err is a proxy's 502, 503 or 504.
func IsGateway(err error) bool {
	var e *Error
	return errors.As(err, &e) && gatewayStatus(e.Status)
}

// stripURL drops the *url.Error wrapper, whose text repeats the URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
