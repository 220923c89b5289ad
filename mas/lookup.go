package mas

import (
	"context"
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
