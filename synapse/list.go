package synapse

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// ListFilter narrows GET /_synapse/admin/v2/users; zero values filter nothing.
type ListFilter struct {
	Name        string   // localpart or display name contains
	UserID      string   // user id contains
	Deactivated bool     // include deactivated users
	Guests      *bool    // nil: Synapse's default (guests included)
	AdminsOnly  bool     // only server admins
	UserTypes   []string // only these user types ("" for none)
}

// ListedUser is one entry of the user list.
type ListedUser struct {
	Name        string  `json:"name"`
	Displayname *string `json:"displayname"`
	AvatarURL   *string `json:"avatar_url"`
	Admin       Flag    `json:"admin"`
	UserType    *string `json:"user_type"`
	Deactivated Flag    `json:"deactivated"`
	Erased      Flag    `json:"erased"`
	ShadowBan   Flag    `json:"shadow_banned"`
	Locked      Flag    `json:"locked"`
	IsGuest     Flag    `json:"is_guest"`
	CreationTS  int64   `json:"creation_ts"`
	LastSeenTS  *int64  `json:"last_seen_ts"` // ms; Synapse 1.160 and later, null when never seen
}

// ListUsers returns one page of users from offset from, and the offset of
// the next page ("" at the end). Synapse pages by offset, so users created
// or deleted meanwhile can shift a page: callers deduplicate by Name.
func (c *Client) ListUsers(ctx context.Context, f ListFilter, from string, limit int) ([]ListedUser, string, error) {
	q := url.Values{}
	q.Set("limit", strconv.Itoa(limit))
	if from != "" {
		q.Set("from", from)
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if f.UserID != "" {
		q.Set("user_id", f.UserID)
	}
	q.Set("deactivated", strconv.FormatBool(f.Deactivated))
	if f.Guests != nil {
		q.Set("guests", strconv.FormatBool(*f.Guests))
	}
	if f.AdminsOnly {
		q.Set("admins", "true")
	}
	for _, t := range f.UserTypes {
		q.Add("user_types", t)
	}
	q.Set("order_by", "name")
	var out struct {
		Users     []ListedUser    `json:"users"`
		NextToken json.RawMessage `json:"next_token"`
	}
	if _, err := c.do(ctx, http.MethodGet, c.admin("/v2/users")+"?"+q.Encode(), nil, &out); err != nil {
		return nil, "", err
	}
	// next_token has been a number and a string over Synapse's versions.
	next := ""
	if len(out.NextToken) > 0 && string(out.NextToken) != "null" {
		var s string
		if json.Unmarshal(out.NextToken, &s) == nil {
			next = s
		} else {
			next = string(out.NextToken)
		}
	}
	return out.Users, next, nil
}
