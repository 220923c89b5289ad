package masstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// synapseClient calls Synapse's MAS-facing API (/_synapse/mas/…), with the
// shared secret as the bearer token, as MAS's crates/matrix-synapse does.
type synapseClient struct {
	base   string
	secret string
	hc     *http.Client
}

// provisionRequest is provision_user's body. Only the fields set are sent:
// Synapse leaves the others alone (and refuses set_x with unset_x).
type provisionRequest struct {
	Localpart      string    `json:"localpart"`
	SetDisplayname *string   `json:"set_displayname,omitempty"`
	SetAvatarURL   *string   `json:"set_avatar_url,omitempty"`
	SetEmails      *[]string `json:"set_emails,omitempty"`
	UnsetEmails    bool      `json:"unset_emails,omitempty"`
	Locked         *bool     `json:"locked,omitempty"`
}

func (c *synapseClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("synapse %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("synapse %s %s: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// post sends a write and wants a 2xx.
func (c *synapseClient) post(ctx context.Context, path string, body any) error {
	code, b, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("synapse POST %s: HTTP %d: %s", path, code, bytes.TrimSpace(b))
	}
	return nil
}

// localpartAvailable asks Synapse whether a new account may take the name
// (free, valid, outside application services' namespaces).
func (c *synapseClient) localpartAvailable(ctx context.Context, localpart string) (bool, error) {
	code, b, err := c.do(ctx, http.MethodGet, "/_synapse/mas/is_localpart_available?localpart="+url.QueryEscape(localpart), nil)
	if err != nil {
		return false, err
	}
	switch {
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusBadRequest:
		// M_USER_IN_USE, M_INVALID_USERNAME, M_EXCLUSIVE: not available.
		return false, nil
	default:
		return false, fmt.Errorf("synapse is_localpart_available: HTTP %d: %s", code, bytes.TrimSpace(b))
	}
}
