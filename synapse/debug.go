package synapse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// secretKeys are JSON fields whose values never reach a log.
var secretKeys = map[string]bool{"password": true, "new_password": true, "access_token": true, "token": true}

// debugTransport logs each request: one line at level 1, and with level 2
// the bodies too, with Authorization and every secret field redacted.
type debugTransport struct {
	next  http.RoundTripper
	out   io.Writer
	level int
	mu    sync.Mutex
}

func (d *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	var reqBody []byte
	if d.level >= 2 && req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := d.next.RoundTrip(req)
	d.mu.Lock()
	defer d.mu.Unlock()
	path := req.URL.EscapedPath()
	if req.URL.RawQuery != "" {
		path += "?" + req.URL.RawQuery
	}
	sc, _ := req.Context().Value(secretCall{}).(secretCall)
	if sc.secret != "" {
		path = sc.shown // the path holds a credential
	}
	hide := func(s string) string {
		if sc.secret == "" {
			return s
		}
		return strings.ReplaceAll(s, sc.secret, "[redacted]")
	}
	if err != nil {
		fmt.Fprintf(d.out, "debug: %s %s: %v (%s)\n", req.Method, path, err, time.Since(start).Round(time.Millisecond))
		return resp, err
	}
	fmt.Fprintf(d.out, "debug: %s %s: %d (%s)\n", req.Method, path, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if d.level >= 2 {
		fmt.Fprintf(d.out, "debug:   > Authorization: [redacted]\n")
		if len(reqBody) > 0 {
			fmt.Fprintf(d.out, "debug:   > %s\n", hide(Redact(reqBody)))
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil && len(body) > 0 {
			fmt.Fprintf(d.out, "debug:   < %s\n", hide(Redact(body[:min(len(body), 4096)])))
		}
	}
	return resp, nil
}

// Redact returns a JSON document with the values of secret fields, at any
// depth, replaced. Anything that is not JSON is withheld entirely.
func Redact(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Sprintf("[%d bytes, not JSON: withheld]", len(b))
	}
	out, _ := json.Marshal(redact(v))
	return string(out)
}

func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if secretKeys[k] {
				x[k] = "[redacted]"
			} else {
				x[k] = redact(val)
			}
		}
	case []any:
		for i := range x {
			x[i] = redact(x[i])
		}
	}
	return v
}
