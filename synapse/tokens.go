package synapse

import (
	"context"
	"net/http"
	"net/url"
)

// RegistrationToken is a registration token as the admin API lists it.
// A nil UsesAllowed is unlimited, a nil ExpiryTime (unix ms) never expires.
type RegistrationToken struct {
	Token       string `json:"token"`
	UsesAllowed *int64 `json:"uses_allowed"`
	Pending     int64  `json:"pending"`
	Completed   int64  `json:"completed"`
	ExpiryTime  *int64 `json:"expiry_time"`
}

// RegistrationTokens lists every registration token, valid or not (the
// list is not paged).
func (c *Client) RegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	var out struct {
		Tokens []RegistrationToken `json:"registration_tokens"`
	}
	err := c.get(ctx, c.admin("/v1/registration_tokens"), &out)
	return out.Tokens, err
}

// GetRegistrationToken returns one token, or an error for which IsNotFound
// is true.
func (c *Client) GetRegistrationToken(ctx context.Context, token string) (*RegistrationToken, error) {
	var t RegistrationToken
	if _, err := c.doSecret(ctx, http.MethodGet, c.admin("/v1/registration_tokens/%s", url.PathEscape(token)), token, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// NewRegistrationToken creates token (which synbatch always names: a token
// Synapse generated would be lost with a lost answer). Synapse refuses an
// expiry in the past and a token that exists (400).
func (c *Client) NewRegistrationToken(ctx context.Context, token string, usesAllowed, expiryTime *int64) error {
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/registration_tokens/new"),
		map[string]any{"token": token, "uses_allowed": usesAllowed, "expiry_time": expiryTime}, nil)
	return err
}

// UpdateRegistrationToken sets a token's uses_allowed and expiry_time (nil:
// unlimited, never).
func (c *Client) UpdateRegistrationToken(ctx context.Context, token string, usesAllowed, expiryTime *int64) error {
	_, err := c.doSecret(ctx, http.MethodPut, c.admin("/v1/registration_tokens/%s", url.PathEscape(token)), token,
		map[string]any{"uses_allowed": usesAllowed, "expiry_time": expiryTime}, nil)
	return err
}
