package synapse

import (
	"context"
	"io"
	"net/http"
	"strings"
)

// AuthIssuer returns the issuer of the authorization server the homeserver
// delegates its accounts to (MSC3861: Matrix Authentication Service), or ""
// when it keeps them itself. It asks the stable auth_metadata endpoint
// first, then MSC2965's unstable auth_issuer, which older servers serve;
// neither needs a token. A 404 from both means no delegation.
func (c *Client) AuthIssuer(ctx context.Context) (string, error) {
	var meta struct {
		Issuer string `json:"issuer"`
	}
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/_matrix/client/v1/auth_metadata", out: &meta, sharedPause: true})
	if err == nil {
		return meta.Issuer, nil
	}
	if !IsNotFound(err) && !IsUnrecognized(err) {
		return "", err
	}
	_, err = c.send(ctx, call{method: http.MethodGet, path: "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer", out: &meta, sharedPause: true})
	if IsNotFound(err) || IsUnrecognized(err) {
		return "", nil
	}
	return meta.Issuer, err
}

// CanAdmin reports whether the token may use the Admin API, by a read every
// admin may make and nobody else: the first entry of the user list (with
// guests=false, which a server that delegates to MAS requires). It is the
// check for a server where admin rights come from the token's scope, not
// from the account, so /users/<id>/admin is gone.
func (c *Client) CanAdmin(ctx context.Context) (bool, error) {
	_, err := c.do(ctx, http.MethodGet, c.admin("/v2/users?limit=1&guests=false"), nil, nil)
	if IsAuth(err) {
		return false, nil
	}
	return err == nil, err
}

// SetToken replaces the token requests are sent with. It is for the start of
// a run, before any worker uses the client: the token an authorization
// server issued for the run once the server was found to delegate to one.
func (c *Client) SetToken(tok string) { c.token = strings.TrimSpace(tok) }

// HasToken reports whether the client has a token to send.
func (c *Client) HasToken() bool { return c.token != "" }

// NetErrorOf wraps a request that got no HTTP answer, deciding as the
// client does whether it may have reached the server. Other clients that
// share these rules (the MAS client) build their errors with it.
func NetErrorOf(method, path string, err error) *NetError {
	return &NetError{Method: method, Path: path, Sent: wasSent(err), Err: stripURL(err)}
}

// DebugTransport logs each request through next as the client's own -v
// and -vv do (secrets redacted), for other clients of the same run.
func DebugTransport(next http.RoundTripper, out io.Writer, level int) http.RoundTripper {
	if out == nil || level <= 0 {
		return next
	}
	return &debugTransport{next: next, out: out, level: level}
}
