package synapse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Threepid is a third-party id (email or msisdn) bound to an account.
type Threepid struct {
	Medium  string `json:"medium"`
	Address string `json:"address"`
}

// ExternalID maps an account to a user of an identity provider.
type ExternalID struct {
	AuthProvider string `json:"auth_provider"`
	ExternalID   string `json:"external_id"`
}

// User is an account as GET /_synapse/admin/v2/users/<id> returns it.
// Synapse has sent flags as 0/1 and as booleans over the years; Flag takes both.
type User struct {
	Name        string       `json:"name"`
	Displayname *string      `json:"displayname"`
	AvatarURL   *string      `json:"avatar_url"`
	Threepids   []Threepid   `json:"threepids"`
	ExternalIDs []ExternalID `json:"external_ids"`
	Admin       Flag         `json:"admin"`
	Deactivated Flag         `json:"deactivated"`
	Erased      Flag         `json:"erased"`
	Locked      Flag         `json:"locked"`
	ShadowBan   Flag         `json:"shadow_banned"`
	Suspended   Flag         `json:"suspended"`
	IsGuest     Flag         `json:"is_guest"`
	UserType    *string      `json:"user_type"`
	CreationTS  int64        `json:"creation_ts"`
	// AppserviceID names the application service that registered the
	// account (a bridge's puppet); nil for a person's account.
	AppserviceID *string `json:"appservice_id"`
}

// Flag is a boolean that Synapse may send as true/false or 1/0.
type Flag bool

// UnmarshalJSON accepts true, false, 1, 0 and null.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0", "null":
		*f = false
	default:
		return fmt.Errorf("flag: unexpected %s", b)
	}
	return nil
}

func (c *Client) admin(format string, args ...any) string {
	return c.adminPath + fmt.Sprintf(format, args...)
}

// Whoami returns the user id the token belongs to.
func (c *Client) Whoami(ctx context.Context) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/account/whoami", nil, &out); err != nil {
		return "", err
	}
	return out.UserID, nil
}

// Self is Whoami asked once: the token's user id, cached for the client's life.
func (c *Client) Self(ctx context.Context) (string, error) {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.self != "" {
		return c.self, nil
	}
	id, err := c.Whoami(ctx)
	if err != nil {
		return "", fmt.Errorf("ask the server whose token this is: %w", err)
	}
	c.self = id
	return id, nil
}

// IsAdmin reports whether userID is a server admin. Only an admin may ask,
// so a 403 answers the question for the token's own user.
func (c *Client) IsAdmin(ctx context.Context, userID string) (bool, error) {
	var out struct {
		Admin bool `json:"admin"`
	}
	_, err := c.do(ctx, http.MethodGet, c.admin("/v1/users/%s/admin", url.PathEscape(userID)), nil, &out)
	if err != nil {
		return false, err
	}
	return out.Admin, nil
}

// ServerVersion returns Synapse's version string.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	var out struct {
		ServerVersion string `json:"server_version"`
	}
	if _, err := c.do(ctx, http.MethodGet, c.admin("/v1/server_version"), nil, &out); err != nil {
		return "", err
	}
	return out.ServerVersion, nil
}

// GetUser returns the account, or an error for which IsNotFound is true.
func (c *Client) GetUser(ctx context.Context, userID string) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodGet, c.admin("/v2/users/%s", url.PathEscape(userID)), nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// PutUser creates or modifies an account with exactly the fields in body.
// It reports whether the account was created (201) rather than modified.
func (c *Client) PutUser(ctx context.Context, userID string, body map[string]any) (created bool, err error) {
	status, err := c.do(ctx, http.MethodPut, c.admin("/v2/users/%s", url.PathEscape(userID)), body, nil)
	return status == http.StatusCreated, err
}

// ThreepidOwner returns the user a threepid is bound to, or "" when it is free.
func (c *Client) ThreepidOwner(ctx context.Context, medium, address string) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	_, err := c.do(ctx, http.MethodGet, c.admin("/v1/threepid/%s/users/%s", url.PathEscape(medium), url.PathEscape(address)), nil, &out)
	if IsNotFound(err) {
		return "", nil
	}
	return out.UserID, err
}

// ExternalIDOwner returns the user an identity provider's id maps to, or "" when none does.
func (c *Client) ExternalIDOwner(ctx context.Context, provider, id string) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	_, err := c.do(ctx, http.MethodGet, c.admin("/v1/auth_providers/%s/users/%s", url.PathEscape(provider), url.PathEscape(id)), nil, &out)
	if IsNotFound(err) {
		return "", nil
	}
	return out.UserID, err
}

// SetSuspended suspends an account (MSC3823: it keeps its data and may read,
// but not send or join), or lifts the suspension. Synapse 1.160 offers this
// Admin API without an experimental flag.
func (c *Client) SetSuspended(ctx context.Context, userID string, suspend bool) error {
	_, err := c.do(ctx, http.MethodPut, c.admin("/v1/suspend/%s", url.PathEscape(userID)), map[string]any{"suspend": suspend}, nil)
	return err
}

// UsernameAvailable asks whether a new account may take localpart. Synapse
// answers 200 when it may, and 400 with its reason when it may not: an
// account holds it in another case (M_USER_IN_USE), an application service
// claims it (M_EXCLUSIVE), or it is not a valid name (M_INVALID_USERNAME).
// Those answers come back as (false, the *Error); anything else is an error.
func (c *Client) UsernameAvailable(ctx context.Context, localpart string) (bool, *Error, error) {
	_, err := c.do(ctx, http.MethodGet, c.admin("/v1/username_available?username=%s", url.QueryEscape(localpart)), nil, nil)
	var se *Error
	if errors.As(err, &se) && se.Status == http.StatusBadRequest {
		return false, se, nil
	}
	return err == nil, nil, err
}
