package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// redactTypes are the event types Synapse's user redaction redacts (of
// membership events only joins): synapse/handlers/admin.py,
// _redact_all_events.
var redactTypes = []string{"m.room.member", "m.room.message", "m.room.encrypted"}

// redactRoom is one room a redaction covers: the user's membership there
// (left rooms included), how many of their events the redaction would touch
// and how many of those are not redacted yet.
type redactRoom struct {
	room       string
	membership string
	events     int
	pending    int
}

func (r redactRoom) String() string {
	s := r.room
	if r.membership != "" && r.membership != "join" {
		s += " (" + r.membership + ")"
	}
	if r.pending == 0 {
		return s + fmt.Sprintf(": %d redacted already", r.events)
	}
	return s + fmt.Sprintf(": %d of %d to redact", r.pending, r.events)
}

// redactRooms finds the rooms a redaction covers and counts the user's
// events in each. Rooms named on the row are taken as they are; with none,
// every room the user has events in: the memberships endpoint's rooms (left
// ones included) and, as the events export finds them, the rooms every
// local member has left, whose current state Synapse no longer keeps.
// Synapse's own choice (rooms the user is joined to or banned from now)
// would leave the messages of a room they left readable. Rooms where the
// user has no event to redact are left out.
func redactRooms(ctx context.Context, c *synapse.Client, user string, r *redaction) ([]redactRoom, error) {
	var cands []redactRoom
	if len(r.rooms) > 0 {
		ids, err := resolveRooms(ctx, c, r.rooms)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			cands = append(cands, redactRoom{room: id})
		}
	} else {
		ms, _, err := c.Memberships(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("rooms of %s: %w", user, err)
		}
		for room, m := range ms {
			cands = append(cands, redactRoom{room: room, membership: m})
		}
		empty, err := roomsWithoutLocalMembers(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, room := range empty {
			if _, ok := ms[room]; !ok {
				cands = append(cands, redactRoom{room: room, membership: "leave"})
			}
		}
		slices.SortFunc(cands, func(a, b redactRoom) int { return strings.Compare(a.room, b.room) })
	}
	out := cands[:0]
	for _, rr := range cands {
		var err error
		rr.events, rr.pending, err = countRedactable(ctx, c, user, rr.room, r.limit)
		if err != nil {
			return nil, fmt.Errorf("events of %s in %s: %w", user, rr.room, err)
		}
		if rr.events > 0 || len(r.rooms) > 0 {
			out = append(out, rr)
		}
	}
	return out, nil
}

// roomsWithoutLocalMembers pages the server's room list for the rooms no
// local member is joined to: the memberships endpoint cannot list them.
func roomsWithoutLocalMembers(ctx context.Context, c *synapse.Client) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	from := ""
	for {
		rooms, next, _, err := c.ListRooms(ctx, synapse.RoomFilter{}, from, 500)
		if err != nil {
			return nil, fmt.Errorf("room list: %w", err)
		}
		for _, r := range rooms {
			// The list pages by offset: a room can come twice.
			if !seen[r.RoomID] && r.JoinedLocalMembers == 0 {
				out = append(out, r.RoomID)
			}
			seen[r.RoomID] = true
		}
		if next == "" || next == from || len(rooms) == 0 {
			return out, nil
		}
		from = next
	}
}

// countRedactable reads the user's events in a room, newest first as
// Synapse picks them (the newest limit of them when limit is set), and
// counts those its redaction would touch and those still unredacted.
func countRedactable(ctx context.Context, c *synapse.Client, user, room string, limit int64) (events, pending int, err error) {
	from := ""
	seen := int64(0)
	for {
		p, err := c.RoomMessages(ctx, room, synapse.Backward, from, 500, synapse.EventFilter{Senders: []string{user}, Types: redactTypes})
		if synapse.IsNotFound(err) {
			return 0, 0, nil // gone since the rooms were listed
		}
		if err != nil {
			return 0, 0, err
		}
		for _, raw := range p.Chunk {
			var ev struct {
				Type     string                      `json:"type"`
				Sender   string                      `json:"sender"`
				Content  struct{ Membership string } `json:"content"`
				Unsigned struct {
					RedactedBecause json.RawMessage `json:"redacted_because"`
				} `json:"unsigned"`
			}
			if json.Unmarshal(raw, &ev) != nil || ev.Sender != user || !slices.Contains(redactTypes, ev.Type) {
				continue
			}
			seen++
			if limit > 0 && seen > limit {
				return events, pending, nil
			}
			if ev.Type == "m.room.member" && ev.Content.Membership != "join" {
				continue
			}
			events++
			if len(ev.Unsigned.RedactedBecause) == 0 || string(ev.Unsigned.RedactedBecause) == "null" {
				pending++
			}
		}
		if p.End == "" || p.End == from {
			return events, pending, nil
		}
		from = p.End
	}
}
