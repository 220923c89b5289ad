package mas

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// resource is one JSON:API resource: its type, id and attributes, and in a
// list its cursor.
type resource[T any] struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes T      `json:"attributes"`
	Meta       *struct {
		Page *struct {
			Cursor string `json:"cursor"`
		} `json:"page"`
	} `json:"meta"`
}

// cursor is where a list goes on after this resource: its page cursor, or
// (as MAS's docs say of older releases) its id.
func (r resource[T]) cursor() string {
	if r.Meta != nil && r.Meta.Page != nil && r.Meta.Page.Cursor != "" {
		return r.Meta.Page.Cursor
	}
	return r.ID
}

type single[T any] struct {
	Data resource[T] `json:"data"`
}

type page[T any] struct {
	Data  []resource[T] `json:"data"`
	Links struct {
		Next *string `json:"next"`
	} `json:"links"`
}

// PageSize is how many items one list request asks for (MAS's default is 10).
const PageSize = 100

// listPage reads one page of a list after cursor ("" for the first), and
// returns the cursor of the next page ("" at the end).
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values, after string, n int) ([]resource[T], string, error) {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("page[first]", strconv.Itoa(n))
	q2.Set("count", "false")
	if after != "" {
		q2.Set("page[after]", after)
	}
	var out page[T]
	if _, err := c.do(ctx, http.MethodGet, path+"?"+q2.Encode(), nil, &out); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out.Data) > 0 && out.Links.Next != nil && *out.Links.Next != "" {
		next = out.Data[len(out.Data)-1].cursor()
	}
	return out.Data, next, nil
}

// listAll reads every page of a list.
func listAll[T any](ctx context.Context, c *Client, path string, q url.Values) ([]resource[T], error) {
	var all []resource[T]
	after := ""
	for {
		items, next, err := listPage[T](ctx, c, path, q, after, PageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		after = next
	}
}

// User is a MAS user.
type User struct {
	ID            string     `json:"-"`
	Username      string     `json:"username"`
	CreatedAt     time.Time  `json:"created_at"`
	LockedAt      *time.Time `json:"locked_at"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
	Admin         bool       `json:"admin"`
	LegacyGuest   bool       `json:"legacy_guest"`
}

// Locked reports whether the user is locked; Deactivated likewise.
func (u *User) Locked() bool      { return u.LockedAt != nil }
func (u *User) Deactivated() bool { return u.DeactivatedAt != nil }

func userOf(r resource[User]) *User {
	u := r.Attributes
	u.ID = r.ID
	return &u
}

// UserByUsername returns the user with that localpart, or nil when there is none.
func (c *Client) UserByUsername(ctx context.Context, username string) (*User, error) {
	var out single[User]
	_, err := c.do(ctx, http.MethodGet, "/users/by-username/"+url.PathEscape(username), nil, &out)
	if synapse.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return userOf(out.Data), nil
}

// CreateUser creates a user. MAS then provisions the account on the
// homeserver, with the display name and avatar when given.
func (c *Client) CreateUser(ctx context.Context, username string, displayname, avatarURL *string) (*User, error) {
	body := map[string]any{"username": username}
	if displayname != nil {
		body["displayname"] = *displayname
	}
	if avatarURL != nil {
		body["avatar_url"] = *avatarURL
	}
	var out single[User]
	if _, err := c.do(ctx, http.MethodPost, "/users", body, &out); err != nil {
		return nil, err
	}
	return userOf(out.Data), nil
}

// UsersPage reads one page of users after cursor; status is "active",
// "locked", "deactivated" or "" for all.
func (c *Client) UsersPage(ctx context.Context, status, after string, n int) ([]*User, string, error) {
	q := url.Values{}
	if status != "" {
		q.Set("filter[status]", status)
	}
	items, next, err := listPage[User](ctx, c, "/users", q, after, n)
	if err != nil {
		return nil, "", err
	}
	out := make([]*User, len(items))
	for i, r := range items {
		out[i] = userOf(r)
	}
	return out, next, nil
}

// FirstAdmin returns the oldest active user MAS lets request admin rights,
// or nil when there is none.
func (c *Client) FirstAdmin(ctx context.Context) (*User, error) {
	q := url.Values{"filter[admin]": {"true"}, "filter[status]": {"active"}}
	items, _, err := listPage[User](ctx, c, "/users", q, "", 1)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	return userOf(items[0]), nil
}

func (c *Client) userPost(ctx context.Context, id, what string, body any) error {
	_, err := c.do(ctx, http.MethodPost, "/users/"+url.PathEscape(id)+"/"+what, body, nil)
	return err
}

// SetPassword sets a user's password. MAS's own complexity check applies.
func (c *Client) SetPassword(ctx context.Context, id, password string) error {
	return c.userPost(ctx, id, "set-password", map[string]any{"password": password})
}

// SetAdmin says whether the user may request admin rights.
func (c *Client) SetAdmin(ctx context.Context, id string, admin bool) error {
	return c.userPost(ctx, id, "set-admin", map[string]any{"admin": admin})
}

// Lock locks a user; Unlock lifts it. Both are safe to repeat.
func (c *Client) Lock(ctx context.Context, id string) error { return c.userPost(ctx, id, "lock", nil) }
func (c *Client) Unlock(ctx context.Context, id string) error {
	return c.userPost(ctx, id, "unlock", nil)
}

// Deactivate deactivates a user and asks the homeserver to erase it unless
// skipErase.
func (c *Client) Deactivate(ctx context.Context, id string, skipErase bool) error {
	return c.userPost(ctx, id, "deactivate", map[string]any{"skip_erase": skipErase})
}

// Reactivate reactivates a deactivated user.
func (c *Client) Reactivate(ctx context.Context, id string) error {
	return c.userPost(ctx, id, "reactivate", nil)
}

// Email is one of a user's email addresses. MAS keeps each address once
// across all users.
type Email struct {
	ID     string `json:"-"`
	UserID string `json:"user_id"`
	Email  string `json:"email"`
}

func emailsOf(rs []resource[Email]) []Email {
	out := make([]Email, len(rs))
	for i, r := range rs {
		out[i] = r.Attributes
		out[i].ID = r.ID
	}
	return out
}

// Emails lists a user's addresses.
func (c *Client) Emails(ctx context.Context, userID string) ([]Email, error) {
	rs, err := listAll[Email](ctx, c, "/user-emails", url.Values{"filter[user]": {userID}})
	return emailsOf(rs), err
}

// EmailByAddress returns the record of an address, whoever holds it, or nil.
func (c *Client) EmailByAddress(ctx context.Context, address string) (*Email, error) {
	rs, _, err := listPage[Email](ctx, c, "/user-emails", url.Values{"filter[email]": {address}}, "", 1)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	e := emailsOf(rs)[0]
	return &e, nil
}

// AddEmail gives the user an address; a 409 means some user has it.
func (c *Client) AddEmail(ctx context.Context, userID, address string) error {
	_, err := c.do(ctx, http.MethodPost, "/user-emails", map[string]any{"user_id": userID, "email": address}, nil)
	return err
}

// DeleteEmail removes an address by its record's id.
func (c *Client) DeleteEmail(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/user-emails/"+url.PathEscape(id), nil, nil)
	return err
}

// Link ties a user to a subject at an upstream OAuth 2.0 provider.
type Link struct {
	ID               string  `json:"-"`
	ProviderID       string  `json:"provider_id"`
	Subject          string  `json:"subject"`
	UserID           *string `json:"user_id"`
	HumanAccountName *string `json:"human_account_name"`
}

func linksOf(rs []resource[Link]) []Link {
	out := make([]Link, len(rs))
	for i, r := range rs {
		out[i] = r.Attributes
		out[i].ID = r.ID
	}
	return out
}

// Owner is the user the link belongs to ("" for none).
func (l Link) Owner() string {
	if l.UserID == nil {
		return ""
	}
	return *l.UserID
}

// Links lists a user's links.
func (c *Client) Links(ctx context.Context, userID string) ([]Link, error) {
	rs, err := listAll[Link](ctx, c, "/upstream-oauth-links", url.Values{"filter[user]": {userID}})
	return linksOf(rs), err
}

// LinkBySubject returns the link of a provider's subject, or nil.
func (c *Client) LinkBySubject(ctx context.Context, providerID, subject string) (*Link, error) {
	q := url.Values{"filter[provider]": {providerID}, "filter[subject]": {subject}}
	rs, _, err := listPage[Link](ctx, c, "/upstream-oauth-links", q, "", 1)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	l := linksOf(rs)[0]
	return &l, nil
}

// AddLink links the user to a provider's subject; a 409 means the subject
// is linked already (to anyone, even to this user).
func (c *Client) AddLink(ctx context.Context, userID, providerID, subject string) error {
	_, err := c.do(ctx, http.MethodPost, "/upstream-oauth-links", map[string]any{"user_id": userID, "provider_id": providerID, "subject": subject}, nil)
	return err
}

// DeleteLink removes a link by its id.
func (c *Client) DeleteLink(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/upstream-oauth-links/"+url.PathEscape(id), nil, nil)
	return err
}

// Provider is an upstream OAuth 2.0 provider.
type Provider struct {
	ID         string     `json:"-"`
	Issuer     *string    `json:"issuer"`
	HumanName  *string    `json:"human_name"`
	BrandName  *string    `json:"brand_name"`
	DisabledAt *time.Time `json:"disabled_at"`
}

// Providers lists the upstream providers.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	rs, err := listAll[Provider](ctx, c, "/upstream-oauth-providers", nil)
	out := make([]Provider, len(rs))
	for i, r := range rs {
		out[i] = r.Attributes
		out[i].ID = r.ID
	}
	return out, err
}

// Session is one of a user's active sessions: kind is "compat-sessions"
// (a Matrix device from a legacy login), "oauth2-sessions" or
// "user-sessions" (a browser session at MAS).
type Session struct {
	Kind     string
	ID       string
	DeviceID string
	// LastActiveAt is when MAS last saw the session used (nil: never, as
	// far as MAS knows).
	LastActiveAt *time.Time
}

// ActiveSessions lists the user's unfinished sessions of every kind.
func (c *Client) ActiveSessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	for _, kind := range []string{"compat-sessions", "oauth2-sessions", "user-sessions"} {
		rs, err := listAll[struct {
			DeviceID     *string    `json:"device_id"`
			Scope        string     `json:"scope"`
			LastActiveAt *time.Time `json:"last_active_at"`
		}](ctx, c, "/"+kind, url.Values{"filter[user]": {userID}, "filter[status]": {"active"}})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		for _, r := range rs {
			s := Session{Kind: kind, ID: r.ID, LastActiveAt: r.Attributes.LastActiveAt}
			if r.Attributes.DeviceID != nil {
				s.DeviceID = *r.Attributes.DeviceID
			} else {
				s.DeviceID = scopeDevice(r.Attributes.Scope)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// scopeDevice is the Matrix device an OAuth 2.0 session's scope names: MAS
// shows an OAuth 2.0 session's device only there (compat sessions have a
// device_id attribute).
func scopeDevice(scope string) string {
	for _, sc := range strings.Fields(scope) {
		for _, prefix := range []string{"urn:matrix:client:device:", "urn:matrix:org.matrix.msc2967.client:device:"} {
			if d, ok := strings.CutPrefix(sc, prefix); ok && d != "" {
				return d
			}
		}
	}
	return ""
}

// FinishSession ends a session; finishing a finished one is harmless to try.
func (c *Client) FinishSession(ctx context.Context, s Session) error {
	_, err := c.do(ctx, http.MethodPost, "/"+s.Kind+"/"+url.PathEscape(s.ID)+"/finish", nil, nil)
	return err
}

// PersonalSession is a session MAS issued to this admin client, acting as
// a user, with its access token.
type PersonalSession struct {
	ID          string `json:"-"`
	AccessToken string `json:"access_token"`
}

// CreatePersonalSession asks MAS for a token acting as actorUserID with
// scope, ending after ttl (0: never).
func (c *Client) CreatePersonalSession(ctx context.Context, actorUserID, name, scope string, ttl time.Duration) (*PersonalSession, error) {
	body := map[string]any{"actor_user_id": actorUserID, "human_name": name, "scope": scope}
	if ttl > 0 {
		body["expires_in"] = int64(ttl / time.Second)
	}
	var out single[PersonalSession]
	if _, err := c.do(ctx, http.MethodPost, "/personal-sessions", body, &out); err != nil {
		return nil, err
	}
	ps := out.Data.Attributes
	ps.ID = out.Data.ID
	if ps.AccessToken == "" {
		return nil, fmt.Errorf("MAS created personal session %s without an access token", ps.ID)
	}
	return &ps, nil
}

// RevokePersonalSession ends a personal session and its token.
func (c *Client) RevokePersonalSession(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodPost, "/personal-sessions/"+url.PathEscape(id)+"/revoke", nil, nil)
	return err
}
