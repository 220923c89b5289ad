package mas

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// RegToken is one of MAS's user registration tokens. MAS cannot delete
// one; it can revoke it.
type RegToken struct {
	ID         string     `json:"-"`
	Token      string     `json:"token"`
	UsageLimit *int64     `json:"usage_limit"`
	TimesUsed  int64      `json:"times_used"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// RegTokenByValue returns the token with that value, or nil. MAS's list
// filters by state only, so the whole list is read.
func (c *Client) RegTokenByValue(ctx context.Context, value string) (*RegToken, error) {
	rs, err := listAll[RegToken](ctx, c, "/user-registration-tokens", nil)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Attributes.Token == value {
			t := r.Attributes
			t.ID = r.ID
			return &t, nil
		}
	}
	return nil, nil
}

// CreateRegToken makes a token with that value; a 409 means it exists.
func (c *Client) CreateRegToken(ctx context.Context, value string, usageLimit *int64, expiresAt *time.Time) error {
	_, err := c.do(ctx, http.MethodPost, "/user-registration-tokens", map[string]any{"token": value, "usage_limit": usageLimit, "expires_at": expiresAt}, nil)
	return err
}

// EditRegToken sets a token's usage limit and expiry (nil: none).
func (c *Client) EditRegToken(ctx context.Context, id string, usageLimit *int64, expiresAt *time.Time) error {
	_, err := c.do(ctx, http.MethodPut, "/user-registration-tokens/"+url.PathEscape(id), map[string]any{"usage_limit": usageLimit, "expires_at": expiresAt}, nil)
	return err
}

// SetRegTokenRevoked revokes (revoked true) or unrevokes a token. MAS
// answers 400 when the token is in that state already, which a write whose
// answer was lost leaves it in: the token is read back then, and its state
// is the answer, so a retry never fails on its own earlier success.
func (c *Client) SetRegTokenRevoked(ctx context.Context, id string, revoked bool) error {
	verb := "/unrevoke"
	if revoked {
		verb = "/revoke"
	}
	_, err := c.do(ctx, http.MethodPost, "/user-registration-tokens/"+url.PathEscape(id)+verb, nil, nil)
	if err == nil {
		return nil
	}
	var out single[RegToken]
	if _, rerr := c.do(ctx, http.MethodGet, "/user-registration-tokens/"+url.PathEscape(id), nil, &out); rerr == nil && (out.Data.Attributes.RevokedAt != nil) == revoked {
		return nil
	}
	return err
}

// RegTokens lists every registration token, revoked ones included.
func (c *Client) RegTokens(ctx context.Context) ([]RegToken, error) {
	rs, err := listAll[RegToken](ctx, c, "/user-registration-tokens", nil)
	out := make([]RegToken, len(rs))
	for i, r := range rs {
		out[i] = r.Attributes
		out[i].ID = r.ID
	}
	return out, err
}
