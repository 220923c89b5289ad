package export

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// The admin room messages API returns every event of a room, whatever its
// history visibility. --events=all wants what the user could see, so the
// timeline is filtered here as Synapse 1.160 filters it for the user
// (synapse/visibility.py, _check_client_allowed_to_see_event), from the
// state the forward pages build up event by event, and cut after the user's
// last leave or ban as the client API's /messages cuts it.

// Synapse's orders, least restrictive (most joined) first.
var (
	visibilityOrder = []string{"world_readable", "shared", "invited", "joined"}
	membershipOrder = []string{"join", "invite", "knock", "leave", "ban"}
)

// seenBy follows one room's timeline from its start for one user.
type seenBy struct {
	user       string
	visibility string // the room's history visibility after the last event seen
	membership string // the user's membership after the last event seen ("" before any)
	// lastEvent is the user's current leave or ban: nothing after it was
	// theirs to see. "" while they are in the room.
	lastEvent string
}

// seenBy reads the user's current membership event when they have left the
// room (or were banned), where their view of the room ends.
func (b *bundler) seenBy(ctx context.Context, id, room, membership string) (*seenBy, error) {
	s := &seenBy{user: id, visibility: "shared"}
	if membership != "leave" && membership != "ban" {
		return s, nil
	}
	if d, ok := b.departed[id][room]; ok {
		// A room every local member left has no current state to read.
		s.lastEvent = d.eventID
		return s, nil
	}
	state, err := retried(ctx, b, func() ([]json.RawMessage, error) { return b.c.RoomStateRaw(ctx, room) })
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for _, raw := range state {
		var ev eventHead
		if json.Unmarshal(raw, &ev) == nil && ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == id {
			s.lastEvent = ev.EventID
		}
	}
	if s.lastEvent == "" {
		return nil, fmt.Errorf("state: no membership event of %s", id)
	}
	return s, nil
}

// eventHead is what visibility needs of an event.
type eventHead struct {
	EventID  string  `json:"event_id"`
	Type     string  `json:"type"`
	StateKey *string `json:"state_key"`
	Content  struct {
		Membership        string `json:"membership"`
		HistoryVisibility string `json:"history_visibility"`
	} `json:"content"`
	Unsigned struct {
		PrevContent struct {
			Membership        string `json:"membership"`
			HistoryVisibility string `json:"history_visibility"`
		} `json:"prev_content"`
	} `json:"unsigned"`
}

// sees reports whether the user could see ev, the next event of the
// timeline, and whether it is the last they could see.
func (s *seenBy) sees(raw json.RawMessage) (keep, last bool) {
	var ev eventHead
	if json.Unmarshal(raw, &ev) != nil {
		return false, false
	}
	own := ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == s.user
	// The state at an event, for Synapse, is the state after it.
	if ev.Type == "m.room.history_visibility" && ev.StateKey != nil && *ev.StateKey == "" {
		s.visibility = known(ev.Content.HistoryVisibility, visibilityOrder, "shared")
	}
	if own {
		s.membership = known(ev.Content.Membership, membershipOrder, "leave")
	}
	last = s.lastEvent != "" && ev.EventID == s.lastEvent
	switch ev.Type {
	case "m.room.aliases", "org.matrix.dummy_event":
		return false, last // never sent to clients
	}

	vis := s.visibility
	if ev.Type == "m.room.history_visibility" {
		// A change of visibility is seen by whoever could see either side.
		prev := known(ev.Unsigned.PrevContent.HistoryVisibility, visibilityOrder, "shared")
		vis = mostOpen(vis, prev, visibilityOrder)
	}
	if vis == "shared" || vis == "world_readable" {
		return true, last // the user is in the room's membership list: not a peeker
	}
	m := s.membership
	if own {
		prev := known(ev.Unsigned.PrevContent.Membership, membershipOrder, "leave")
		if m == "leave" && (prev == "join" || prev == "invite") {
			return true, last // one's own leave is always seen
		}
		m = mostOpen(m, prev, membershipOrder)
	}
	switch {
	case m == "join":
		return true, last
	case vis == "invited":
		return m == "invite", last
	}
	return false, last // joined only, and not joined then
}

// known is v when order names it, else def (as Synapse reads odd values).
func known(v string, order []string, def string) string {
	if slices.Contains(order, v) {
		return v
	}
	return def
}

// mostOpen is whichever of a and b comes first in order.
func mostOpen(a, b string, order []string) string {
	if slices.Index(order, b) < slices.Index(order, a) {
		return b
	}
	return a
}
