package mas

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/synbatch/synbatch/synapse"
)

// UserByID returns the user with that MAS id (a ULID), or nil when there
// is none. A match by email or upstream link finds a MAS user id; the row
// needs its username.
func (c *Client) UserByID(ctx context.Context, id string) (*User, error) {
	var out single[User]
	_, err := c.do(ctx, http.MethodGet, "/users/"+url.PathEscape(id), nil, &out)
	if synapse.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return userOf(out.Data), nil
}

// Record is one resource as MAS gives it: its type, id and every
// attribute, kept as MAS wrote them. An export for a data subject request
// writes what MAS holds, including attributes this client does not model.
type Record struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Attributes json.RawMessage `json:"attributes"`
}

func recordsOf(rs []resource[json.RawMessage]) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = Record{Type: r.Type, ID: r.ID, Attributes: r.Attributes}
	}
	return out
}

// UserRecord is the user's own record, or nil when MAS has none.
func (c *Client) UserRecord(ctx context.Context, id string) (*Record, error) {
	var out single[json.RawMessage]
	_, err := c.do(ctx, http.MethodGet, "/users/"+url.PathEscape(id), nil, &out)
	if synapse.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &recordsOf([]resource[json.RawMessage]{out.Data})[0], nil
}

// EmailRecords lists every email record of the user.
func (c *Client) EmailRecords(ctx context.Context, userID string) ([]Record, error) {
	rs, err := listAll[json.RawMessage](ctx, c, "/user-emails", url.Values{"filter[user]": {userID}})
	return recordsOf(rs), err
}

// LinkRecords lists every upstream link record of the user.
func (c *Client) LinkRecords(ctx context.Context, userID string) ([]Record, error) {
	rs, err := listAll[json.RawMessage](ctx, c, "/upstream-oauth-links", url.Values{"filter[user]": {userID}})
	return recordsOf(rs), err
}

// SessionKinds are MAS's three kinds of user session: compatibility
// sessions (Matrix devices from a legacy login), OAuth 2.0 sessions and
// browser sessions at MAS.
func SessionKinds() []string { return []string{"compat-sessions", "oauth2-sessions", "user-sessions"} }

// SessionRecords lists every session of the user of one kind, finished
// ones included.
func (c *Client) SessionRecords(ctx context.Context, kind, userID string) ([]Record, error) {
	rs, err := listAll[json.RawMessage](ctx, c, "/"+kind, url.Values{"filter[user]": {userID}})
	return recordsOf(rs), err
}
