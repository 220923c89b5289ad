package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/synapse"
)

// timelineEvent is what the fault cases of room actions read of an event.
type timelineEvent struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Content        json.RawMessage `json:"content"`
}

// timeline reads a room's whole timeline, oldest first, through the admin
// room messages API: the server's own record of every event sent.
func (e *env) timeline(t *testing.T, room string) []timelineEvent {
	t.Helper()
	var evs []timelineEvent
	from := ""
	for {
		p, err := e.client.RoomMessages(context.Background(), room, synapse.Forward, from, 1000, synapse.EventFilter{})
		if err != nil {
			t.Fatalf("messages of %s: %v", room, err)
		}
		for _, raw := range p.Chunk {
			var ev timelineEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		if p.End == "" || p.End == from {
			return evs
		}
		from = p.End
	}
}

// redactCase: n fresh users join one fresh room and write two messages
// each, beside the owner's own; each row redacts one user. Read back, every
// message and join of each user is named by exactly one m.room.redaction,
// and none of the owner's is.
func redactCase() faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		ctx := context.Background()
		owner := e.roomUser(t, uniq(t)+"-owner")
		room := e.roomOf(t, owner, "Fault redact", "public_chat")
		e.roomSend(t, owner, room, 2)
		var b strings.Builder
		b.WriteString("action,user_id,reason\n")
		var ids []string
		for range n {
			w := e.roomUser(t, uniq(t))
			if err := e.client.Join(ctx, room, w.id); err != nil {
				t.Fatal(err)
			}
			e.roomSend(t, w, room, 2)
			ids = append(ids, w.id)
			fmt.Fprintf(&b, "redact,%s,fault tier\n", w.id)
		}
		return b.String(), []string{"--yes"}, func(t *testing.T) {
			for _, id := range ids {
				got := e.redactionsOf(t, room, map[string]bool{id: true})
				if len(got) != 3 { // the join and two messages
					t.Errorf("%s: %d events of theirs in the room, want 3", id, len(got))
				}
				for ev, k := range got {
					if k != 1 {
						t.Errorf("%s: event %s is named by %d redactions, want 1", id, ev, k)
					}
				}
			}
			for ev, k := range e.redactionsOf(t, room, map[string]bool{owner.id: true}) {
				if k != 0 {
					t.Errorf("the owner's event %s was redacted %d times", ev, k)
				}
			}
		}
	}}
}

// makeRoomAdminCase: each row makes a fresh user admin of a fresh private
// room of one owner. Read back, the user holds the owner's level (100) in
// the power levels, and the timeline holds exactly what one
// make_room_admin call adds: one m.room.power_levels event beyond the
// room's first, and one membership event of the user (the invite).
func makeRoomAdminCase() faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		owner := e.roomUser(t, uniq(t)+"-owner")
		var b strings.Builder
		b.WriteString("action,room_id,user_id\n")
		var rooms, ids []string
		for i := range n {
			room := e.roomOf(t, owner, fmt.Sprintf("Fault admin %d", i), "private_chat")
			id := e.newUser(t, uniq(t), nil)
			rooms, ids = append(rooms, room), append(ids, id)
			fmt.Fprintf(&b, "make-room-admin,%s,%s\n", room, id)
		}
		return b.String(), nil, func(t *testing.T) {
			ctx := context.Background()
			for i, room := range rooms {
				id := ids[i]
				pls, err := e.client.RoomState(ctx, room, "m.room.power_levels")
				if err != nil || len(pls) != 1 {
					t.Fatalf("%s: power levels %v (%v)", room, pls, err)
				}
				var pl struct {
					Users map[string]int `json:"users"`
				}
				_ = json.Unmarshal(pls[0].Content, &pl)
				if pl.Users[id] != 100 {
					t.Errorf("%s: %s has power %d, want 100 (%v)", room, id, pl.Users[id], pl.Users)
				}
				levels, memberships := 0, 0
				for _, ev := range e.timeline(t, room) {
					switch {
					case ev.Type == "m.room.power_levels":
						levels++
					case ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == id:
						memberships++
					}
				}
				if levels != 2 || memberships != 1 {
					t.Errorf("%s: %d power-levels events (want the room's first and one more), %d membership events of %s (want the invite)",
						room, levels, memberships, id)
				}
			}
		}
	}}
}

// purgeHistoryCase: each row purges a fresh room's history before a point
// between its owner's first three messages and the two after. Read back,
// the timeline holds of the events before the point at most the newest
// (which Synapse keeps) and both later messages, and the server's task
// list holds exactly one purge_history task for the room, complete: a
// lost answer or a resume never started a second purge.
func purgeHistoryCase() faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		owner := e.roomUser(t, uniq(t)+"-owner")
		var b strings.Builder
		b.WriteString("action,room_id,before,delete_local_events\n")
		var rooms []string
		for i := range n {
			room := e.roomOf(t, owner, fmt.Sprintf("Fault history %d", i), "public_chat")
			e.roomSend(t, owner, room, 3)
			rooms = append(rooms, room)
		}
		// The point is after every earlier message was answered (so
		// received), and the later ones are sent once the clock has passed
		// it: Synapse finds the point by the times it received events.
		cut := clockCut()
		for _, room := range rooms {
			e.roomSend(t, owner, room, 2)
			fmt.Fprintf(&b, "purge-history,%s,%d,true\n", room, cut)
		}
		return b.String(), []string{"--yes"}, func(t *testing.T) {
			for _, room := range rooms {
				var older []string
				msgs := 0
				for _, ev := range e.timeline(t, room) {
					if ev.OriginServerTS < cut {
						older = append(older, ev.Type)
					} else if ev.Type == "m.room.message" {
						msgs++
					}
				}
				// Synapse keeps the room's newest event before the point
				// (the third message) unless the room's next event was the
				// first the server received after it.
				if len(older) > 1 || len(older) == 1 && older[0] != "m.room.message" {
					t.Errorf("%s: events from before the cut still there: %v, want at most the newest message", room, older)
				}
				if msgs != 2 {
					t.Errorf("%s: %d messages after the cut, want 2", room, msgs)
				}
				if tasks := e.purgeTasks(t, room); len(tasks) != 1 || tasks[0] != "complete" {
					t.Errorf("%s: purge tasks %v, want exactly one, complete", room, tasks)
				}
			}
		}
	}}
}

// purgeTasks returns the status of every purge_history task the server's
// task scheduler holds for a room.
func (e *env) purgeTasks(t *testing.T, room string) []string {
	t.Helper()
	tok, err := os.ReadFile(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Tasks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"scheduled_tasks"`
	}
	q := url.Values{"action_name": {"purge_history"}, "resource_id": {room}}
	e.mustCall(t, "GET", "/_synapse/admin/v1/scheduled_tasks?"+q.Encode(), strings.TrimSpace(string(tok)), nil, &out)
	var st []string
	for _, task := range out.Tasks {
		st = append(st, task.Status)
	}
	return st
}
