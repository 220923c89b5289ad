package synapse

import (
	"context"
	"net/http"
	"net/url"
)

// Device is one of a user's devices.
type Device struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
}

// Ratelimit is a user's rate-limit override; nil fields mean none is set.
type Ratelimit struct {
	MessagesPerSecond *int64 `json:"messages_per_second,omitempty"`
	BurstCount        *int64 `json:"burst_count,omitempty"`
}

func (c *Client) userPath(version, id, rest string) string {
	return c.admin("/%s/users/%s%s", version, url.PathEscape(id), rest)
}

// ResetPassword sets a user's password; logout says whether their devices are logged out.
func (c *Client) ResetPassword(ctx context.Context, id, password string, logout bool) error {
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/reset_password/%s", url.PathEscape(id)),
		map[string]any{"new_password": password, "logout_devices": logout}, nil)
	return err
}

// Devices lists a user's devices.
func (c *Client) Devices(ctx context.Context, id string) ([]Device, error) {
	var out struct {
		Devices []Device `json:"devices"`
	}
	_, err := c.do(ctx, http.MethodGet, c.userPath("v2", id, "/devices"), nil, &out)
	return out.Devices, err
}

// DeleteDevices deletes devices (a missing one is not an error in Synapse).
func (c *Client) DeleteDevices(ctx context.Context, id string, devices []string) error {
	_, err := c.do(ctx, http.MethodPost, c.userPath("v2", id, "/delete_devices"), map[string]any{"devices": devices}, nil)
	return err
}

// Deactivate deactivates an account, erasing it when erase is set.
func (c *Client) Deactivate(ctx context.Context, id string, erase bool) error {
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/deactivate/%s", url.PathEscape(id)), map[string]any{"erase": erase}, nil)
	return err
}

// JoinedRooms lists the rooms a user is joined to.
func (c *Client) JoinedRooms(ctx context.Context, id string) ([]string, error) {
	var out struct {
		JoinedRooms []string `json:"joined_rooms"`
	}
	_, err := c.do(ctx, http.MethodGet, c.userPath("v1", id, "/joined_rooms"), nil, &out)
	return out.JoinedRooms, err
}

// Join makes a local user join a room the admin can invite to.
func (c *Client) Join(ctx context.Context, room, id string) error {
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/join/%s", url.PathEscape(room)), map[string]any{"user_id": id}, nil)
	return err
}

// ResolveAlias returns the room id an alias points to.
func (c *Client) ResolveAlias(ctx context.Context, alias string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	_, err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/directory/room/"+url.PathEscape(alias), nil, &out)
	return out.RoomID, err
}

// SetShadowBan shadow-bans a user, or lifts it.
func (c *Client) SetShadowBan(ctx context.Context, id string, ban bool) error {
	m := http.MethodPost
	if !ban {
		m = http.MethodDelete
	}
	_, err := c.do(ctx, m, c.userPath("v1", id, "/shadow_ban"), map[string]any{}, nil)
	return err
}

// GetRatelimit returns a user's override; both fields nil when none is set.
func (c *Client) GetRatelimit(ctx context.Context, id string) (Ratelimit, error) {
	var out Ratelimit
	_, err := c.do(ctx, http.MethodGet, c.userPath("v1", id, "/override_ratelimit"), nil, &out)
	return out, err
}

// SetRatelimit sets a user's override.
func (c *Client) SetRatelimit(ctx context.Context, id string, perSecond, burst int64) error {
	_, err := c.do(ctx, http.MethodPost, c.userPath("v1", id, "/override_ratelimit"),
		map[string]any{"messages_per_second": perSecond, "burst_count": burst}, nil)
	return err
}

// DeleteRatelimit removes a user's override.
func (c *Client) DeleteRatelimit(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, c.userPath("v1", id, "/override_ratelimit"), nil, nil)
	return err
}

// RoomExists returns nil when the server knows the room, or an error for
// which IsNotFound is true.
func (c *Client) RoomExists(ctx context.Context, roomID string) error {
	_, err := c.do(ctx, http.MethodGet, c.admin("/v1/rooms/%s", url.PathEscape(roomID)), nil, nil)
	return err
}
