package synapse

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
)

// This file reads what a user wrote: the rooms they have a membership in
// and the events of those rooms, for export data --events.

// Memberships returns GET /_synapse/admin/v1/users/<id>/memberships as sent
// and the room id -> membership map in it. Synapse reads it from the rooms'
// current state, so it lists rooms the user joined, left, was banned from,
// is invited to or knocked on, as long as the server is still in the room;
// a room every local member has left, or a purged one, is not there.
// Older Synapse without the endpoint answers IsUnrecognized or IsNotFound.
func (c *Client) Memberships(ctx context.Context, id string) (map[string]string, json.RawMessage, error) {
	raw, err := c.getRaw(ctx, c.userPath("v1", id, "/memberships"))
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Memberships map[string]string `json:"memberships"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, nil, err
	}
	if out.Memberships == nil {
		out.Memberships = map[string]string{}
	}
	return out.Memberships, raw, nil
}

// MessagesPage is one page of a room's timeline, in the direction asked. End is the
// token of the next page, "" once the timeline is read to its end.
type MessagesPage struct {
	Chunk []json.RawMessage `json:"chunk"`
	End   string            `json:"end"`
}

// EventFilter narrows a room's messages; empty fields filter nothing.
// Synapse applies it in its query, so pages of other events are not sent.
type EventFilter struct {
	Senders []string `json:"senders,omitempty"`
	Types   []string `json:"types,omitempty"`
}

// Directions RoomMessages reads a timeline in.
const (
	Forward  = "f" // oldest first, from the room's start
	Backward = "b" // newest first, from the room's end
)

// RoomMessages returns one page of a room's events in direction dir
// (Forward or Backward), from the token from ("" for that end), through
// the admin room messages API: every event the server holds, whatever the
// room's history visibility. A page may be empty and still have an End
// (Synapse filters again after its query, and a page whose events were all
// filtered out then comes empty): only a missing End means the end.
func (c *Client) RoomMessages(ctx context.Context, roomID, dir, from string, limit int, filter EventFilter) (*MessagesPage, error) {
	q := url.Values{"dir": {dir}, "limit": {strconv.Itoa(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	if len(filter.Senders) > 0 || len(filter.Types) > 0 {
		f, err := json.Marshal(filter)
		if err != nil {
			return nil, err
		}
		q.Set("filter", string(f))
	}
	var p MessagesPage
	if err := c.get(ctx, c.roomPath("v1", roomID, "/messages?"+q.Encode()), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// RoomStateRaw returns a room's current state events as sent (every field,
// event ids and timestamps included), or an error for which IsNotFound is
// true for a room the server is not in.
func (c *Client) RoomStateRaw(ctx context.Context, roomID string) ([]json.RawMessage, error) {
	var out struct {
		State []json.RawMessage `json:"state"`
	}
	err := c.get(ctx, c.roomPath("v1", roomID, "/state"), &out)
	return out.State, err
}
