package synapse

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// This file holds the room and media endpoints of bulk room rows: block,
// delete (a server task), make_room_admin, purge_history (a server task),
// and a user's media. Checked against Synapse 1.160: where its answers
// differ from the docs, the comment says so.

// RoomInfo is a room as the room list and GET /_synapse/admin/v1/rooms/<id>
// describe it (the details add a few fields this type does not need).
type RoomInfo struct {
	RoomID             string  `json:"room_id"`
	Name               *string `json:"name"`
	CanonicalAlias     *string `json:"canonical_alias"`
	JoinedMembers      int64   `json:"joined_members"`
	JoinedLocalMembers int64   `json:"joined_local_members"`
	Version            *string `json:"version"`
	Creator            *string `json:"creator"`
	Encryption         *string `json:"encryption"`
	Federatable        Flag    `json:"federatable"`
	Public             Flag    `json:"public"`
	JoinRules          *string `json:"join_rules"`
	GuestAccess        *string `json:"guest_access"`
	HistoryVisibility  *string `json:"history_visibility"`
	StateEvents        int64   `json:"state_events"`
	RoomType           *string `json:"room_type"`
}

// GetRoom returns a room's details, or an error for which IsNotFound is true
// (a room this server never knew, or one deleted with purge).
func (c *Client) GetRoom(ctx context.Context, roomID string) (*RoomInfo, error) {
	var r RoomInfo
	if err := c.get(ctx, c.roomPath("v1", roomID, ""), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// RoomFilter narrows the room list; zero values filter nothing.
type RoomFilter struct {
	Search string // contained in the name, the canonical alias's localpart, or the room id
}

// ListRooms returns one page of rooms from offset from (ordered by name),
// the offset of the next page ("" at the end) and the total. Synapse pages
// by offset: rooms made or deleted meanwhile shift pages, so callers
// deduplicate by RoomID.
func (c *Client) ListRooms(ctx context.Context, f RoomFilter, from string, limit int) ([]RoomInfo, string, int64, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "order_by": {"name"}}
	if from != "" {
		q.Set("from", from)
	}
	if f.Search != "" {
		q.Set("search_term", f.Search)
	}
	var out struct {
		Rooms     []RoomInfo      `json:"rooms"`
		NextBatch json.RawMessage `json:"next_batch"`
		Total     int64           `json:"total_rooms"`
	}
	if err := c.get(ctx, c.admin("/v1/rooms")+"?"+q.Encode(), &out); err != nil {
		return nil, "", 0, err
	}
	return out.Rooms, rawToken(out.NextBatch), out.Total, nil
}

// rawToken reads a paging token that Synapse sends as a number (1.160) or,
// per the docs, an opaque string; "" when there is none.
func rawToken(raw json.RawMessage) string {
	tok := strings.TrimSpace(string(raw))
	if tok == "" || tok == "null" {
		return ""
	}
	if s, err := strconv.Unquote(tok); err == nil {
		return s
	}
	return tok
}

func (c *Client) roomPath(version, roomID, rest string) string {
	return c.admin("/%s/rooms/%s%s", version, url.PathEscape(roomID), rest)
}

// RoomBlock reports whether a room is blocked, and by whom. It answers for
// any valid room id, known to the server or not.
func (c *Client) RoomBlock(ctx context.Context, roomID string) (blocked bool, by string, err error) {
	var out struct {
		Block  bool   `json:"block"`
		UserID string `json:"user_id"`
	}
	err = c.get(ctx, c.roomPath("v1", roomID, "/block"), &out)
	return out.Block, out.UserID, err
}

// SetRoomBlock blocks a room (a room unknown here may be blocked too), or unblocks it.
func (c *Client) SetRoomBlock(ctx context.Context, roomID string, block bool) error {
	_, err := c.do(ctx, http.MethodPut, c.roomPath("v1", roomID, "/block"), map[string]any{"block": block}, nil)
	return err
}

// RoomMembers lists the users joined to a room.
func (c *Client) RoomMembers(ctx context.Context, roomID string) ([]string, error) {
	var out struct {
		Members []string `json:"members"`
	}
	err := c.get(ctx, c.roomPath("v1", roomID, "/members"), &out)
	return out.Members, err
}

// StateEvent is one event of a room's current state.
type StateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Sender   string          `json:"sender"`
	Content  json.RawMessage `json:"content"`
}

// RoomState returns the room's current state events of one type ("" for all).
func (c *Client) RoomState(ctx context.Context, roomID, eventType string) ([]StateEvent, error) {
	path := c.roomPath("v1", roomID, "/state")
	if eventType != "" {
		path += "?" + url.Values{"type": {eventType}}.Encode()
	}
	var out struct {
		State []StateEvent `json:"state"`
	}
	err := c.get(ctx, path, &out)
	return out.State, err
}

// TimelineEvent is an event of a room's timeline, as far as a purge needs it.
type TimelineEvent struct {
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	OriginServerTS int64  `json:"origin_server_ts"`
}

// FirstEvents returns the oldest events still in a room's timeline (purged
// history is not), at most limit of them.
func (c *Client) FirstEvents(ctx context.Context, roomID string, limit int) ([]TimelineEvent, error) {
	q := url.Values{"dir": {"f"}, "limit": {strconv.Itoa(limit)}}
	var out struct {
		Chunk []TimelineEvent `json:"chunk"`
	}
	err := c.get(ctx, c.roomPath("v1", roomID, "/messages?"+q.Encode()), &out)
	return out.Chunk, err
}

// MakeRoomAdmin gives a local user the power of the room's most powerful
// local member, inviting them when they are not in a room that is not public.
func (c *Client) MakeRoomAdmin(ctx context.Context, roomID, userID string) error {
	_, err := c.do(ctx, http.MethodPost, c.roomPath("v1", roomID, "/make_room_admin"), map[string]any{"user_id": userID}, nil)
	return err
}

// DeleteRoomOptions is the body of a room deletion; nil fields are left out,
// so Synapse's defaults apply (no block, purge).
type DeleteRoomOptions struct {
	NewRoomUserID string `json:"new_room_user_id,omitempty"`
	RoomName      string `json:"room_name,omitempty"`
	Message       string `json:"message,omitempty"`
	Block         *bool  `json:"block,omitempty"`
	Purge         *bool  `json:"purge,omitempty"`
	ForcePurge    *bool  `json:"force_purge,omitempty"`
}

// DeleteRoom starts deleting a room (DELETE /_synapse/admin/v2/rooms/<id>)
// and returns the delete id of the server task doing it. Synapse 1.160
// starts a second task for a room already deleted, and refuses one (400)
// only while another is active.
func (c *Client) DeleteRoom(ctx context.Context, roomID string, opt DeleteRoomOptions) (string, error) {
	var out struct {
		DeleteID string `json:"delete_id"`
	}
	_, err := c.do(ctx, http.MethodDelete, c.roomPath("v2", roomID, ""), opt, &out)
	return out.DeleteID, err
}

// Statuses of server tasks. The docs of the delete status list
// shutting_down and purging; Synapse 1.160 sends its task scheduler's
// statuses instead: scheduled, active, complete, failed (and cancelled).
// The purge history status folds scheduled into active.
const (
	TaskScheduled = "scheduled"
	TaskActive    = "active"
	TaskComplete  = "complete"
	TaskFailed    = "failed"
	TaskCancelled = "cancelled"
)

// TaskRunning reports whether a task with this status may still change something.
func TaskRunning(status string) bool { return status == TaskScheduled || status == TaskActive }

// DeleteTask is a room deletion task as the delete status reports it.
type DeleteTask struct {
	DeleteID string `json:"delete_id"`
	RoomID   string `json:"room_id"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	// ShutdownRoom is what the shutdown did (kicked users, moved aliases).
	ShutdownRoom json.RawMessage `json:"shutdown_room"`
}

// DeleteStatus returns one deletion task, or an error for which IsNotFound
// is true. Synapse keeps finished tasks for a week. It skips the rate
// limiter: polling a task must not spend the budget other rows share.
func (c *Client) DeleteStatus(ctx context.Context, deleteID string) (*DeleteTask, error) {
	var t DeleteTask
	if _, err := c.doUnlimited(ctx, http.MethodGet, c.admin("/v2/rooms/delete_status/%s", url.PathEscape(deleteID)), nil, &t); err != nil {
		return nil, err
	}
	if t.DeleteID == "" {
		t.DeleteID = deleteID
	}
	return &t, nil
}

// RoomDeleteTasks lists a room's deletion tasks of the last week, finished
// or not; none (not a 404) when there are none.
func (c *Client) RoomDeleteTasks(ctx context.Context, roomID string) ([]DeleteTask, error) {
	var out struct {
		Results []DeleteTask `json:"results"`
	}
	err := c.get(ctx, c.roomPath("v2", roomID, "/delete_status"), &out)
	if IsNotFound(err) {
		return nil, nil
	}
	return out.Results, err
}

// PurgeHistory starts purging a room's history older than beforeTS (unix
// ms) and returns the purge id of the server task. Without deleteLocal,
// events sent from this server are only hidden from the timeline (made
// outliers), not deleted.
func (c *Client) PurgeHistory(ctx context.Context, roomID string, beforeTS int64, deleteLocal bool) (string, error) {
	var out struct {
		PurgeID string `json:"purge_id"`
	}
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/purge_history/%s", url.PathEscape(roomID)),
		map[string]any{"purge_up_to_ts": beforeTS, "delete_local_events": deleteLocal}, &out)
	return out.PurgeID, err
}

// PurgeStatus returns a history purge's status (active, complete or failed)
// and its error, or an error for which IsNotFound is true. Like
// DeleteStatus, it skips the rate limiter.
func (c *Client) PurgeStatus(ctx context.Context, purgeID string) (status, taskErr string, err error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	_, err = c.doUnlimited(ctx, http.MethodGet, c.admin("/v1/purge_history_status/%s", url.PathEscape(purgeID)), nil, &out)
	return out.Status, out.Error, err
}

// QuarantineUserMedia quarantines every local file a user uploaded, except
// protected ones, and returns how many it changed.
func (c *Client) QuarantineUserMedia(ctx context.Context, userID string) (int64, error) {
	var out struct {
		N int64 `json:"num_quarantined"`
	}
	_, err := c.do(ctx, http.MethodPost, c.admin("/v1/user/%s/media/quarantine", url.PathEscape(userID)), map[string]any{}, &out)
	return out.N, err
}

// DeleteUserMediaPage deletes one page of a user's media (Synapse's default
// page: the newest 100) and returns how many files it deleted. Synapse
// 1.160 reads no filter here, and the answer has no next_token: call again
// until it deletes none.
func (c *Client) DeleteUserMediaPage(ctx context.Context, userID string) (int64, error) {
	var out struct {
		Total int64 `json:"total"`
	}
	_, err := c.do(ctx, http.MethodDelete, c.userPath("v1", userID, "/media"), nil, &out)
	return out.Total, err
}

// DeleteMedia deletes one local file, or returns an error for which
// IsNotFound is true when it is already gone.
func (c *Client) DeleteMedia(ctx context.Context, serverName, mediaID string) error {
	_, err := c.do(ctx, http.MethodDelete, c.admin("/v1/media/%s/%s", url.PathEscape(serverName), url.PathEscape(mediaID)), nil, nil)
	return err
}
