package export

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// departed is a room that every local member has left, as the room scan
// found it for one user: their last membership there and its event.
type departed struct{ membership, eventID string }

// scanDeparted finds the rooms the memberships endpoint cannot list: Synapse
// drops a room's current state once no local member is joined, and the
// endpoint reads current state. It pages the server's room list and, in
// every room without a joined local member, the member events, and returns
// for each of users the rooms they had a membership in (the last one wins,
// as pages go forward). One pass serves every user of the run.
func (b *bundler) scanDeparted(ctx context.Context, users []string) (map[string]map[string]departed, error) {
	want := make(map[string]bool, len(users))
	for _, u := range users {
		want[u] = true
	}
	out := map[string]map[string]departed{}
	seen := map[string]bool{}
	from := ""
	for {
		type page struct {
			rooms []synapse.RoomInfo
			next  string
		}
		p, err := retried(ctx, b, func() (page, error) {
			rooms, next, _, err := b.c.ListRooms(ctx, synapse.RoomFilter{}, from, 500)
			return page{rooms, next}, err
		})
		if err != nil {
			return nil, fmt.Errorf("room list: %w", err)
		}
		for _, r := range p.rooms {
			// The list pages by offset: a room can come twice.
			if seen[r.RoomID] || r.JoinedLocalMembers > 0 {
				continue
			}
			seen[r.RoomID] = true
			if err := b.scanMembers(ctx, r.RoomID, want, out); err != nil {
				return nil, fmt.Errorf("member events of room %s: %w", r.RoomID, err)
			}
		}
		if p.next == "" || p.next == from || len(p.rooms) == 0 {
			return out, nil
		}
		from = p.next
	}
}

// scanMembers pages one room's member events into out.
func (b *bundler) scanMembers(ctx context.Context, room string, want map[string]bool, out map[string]map[string]departed) error {
	tokens := map[string]bool{}
	from := ""
	for {
		p, err := retried(ctx, b, func() (*synapse.MessagesPage, error) {
			return b.c.RoomMessages(ctx, room, synapse.Forward, from, 1000, synapse.EventFilter{Types: []string{"m.room.member"}})
		})
		if synapse.IsNotFound(err) {
			return nil // gone since the list was read
		}
		if err != nil {
			return err
		}
		for _, raw := range p.Chunk {
			var ev eventHead
			if json.Unmarshal(raw, &ev) != nil || ev.Type != "m.room.member" || ev.StateKey == nil || !want[*ev.StateKey] {
				continue
			}
			if out[*ev.StateKey] == nil {
				out[*ev.StateKey] = map[string]departed{}
			}
			out[*ev.StateKey][room] = departed{membership: known(ev.Content.Membership, membershipOrder, "leave"), eventID: ev.EventID}
		}
		if p.End == "" {
			return nil
		}
		if p.End == from || tokens[p.End] {
			return fmt.Errorf("messages do not advance (token %q)", p.End)
		}
		tokens[p.End] = true
		from = p.End
	}
}
