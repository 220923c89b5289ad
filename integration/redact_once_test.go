package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/synapse"
)

// redactionsOf reads a room's whole timeline through the admin room
// messages API and returns, for every event sent by one of senders that a
// user redaction covers (messages and joins), how many m.room.redaction
// events name it: the server's own count, whatever synbatch reports.
func (e *env) redactionsOf(t *testing.T, room string, senders map[string]bool) map[string]int {
	t.Helper()
	ctx := context.Background()
	targets := map[string]int{}
	redacts := map[string]int{}
	from := ""
	for {
		p, err := e.client.RoomMessages(ctx, room, synapse.Forward, from, 1000, synapse.EventFilter{})
		if err != nil {
			t.Fatalf("messages of %s: %v", room, err)
		}
		for _, raw := range p.Chunk {
			var ev struct {
				Type    string `json:"type"`
				EventID string `json:"event_id"`
				Sender  string `json:"sender"`
				Redacts string `json:"redacts"`
				Content struct {
					Membership string `json:"membership"`
					Redacts    string `json:"redacts"`
				} `json:"content"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			switch {
			case ev.Type == "m.room.redaction":
				redacts[cmp.Or(ev.Redacts, ev.Content.Redacts)]++
			case senders[ev.Sender] && (ev.Type == "m.room.message" || ev.Type == "m.room.member" && ev.Content.Membership == "join"):
				targets[ev.EventID] = 0
			}
		}
		if p.End == "" || p.End == from {
			break
		}
		from = p.End
	}
	for id := range targets {
		targets[id] = redacts[id]
	}
	return targets
}

// TestRedactEveryRoomOnceUnderLostAnswersAndKill: six users write in three
// rooms and leave the third; redact rows without rooms are applied through
// a proxy that loses the answer of 30% of writes (504 after forwarding,
// resets before and after, 503), the first run killed -9 as soon as a
// redaction task is journaled, then resumed until it ends; then the same
// manifest with a new journal. Read back from the server: every message
// and join of theirs in all three rooms (the left one too) is named by
// exactly one redaction, the owner's by none, and the run again planned
// every row unchanged and wrote nothing.
func TestRedactEveryRoomOnceUnderLostAnswersAndKill(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	var rooms []string
	for _, n := range []string{"A", "B", "Left"} {
		rooms = append(rooms, e.roomOf(t, owner, "Redact once "+n+" "+p, "public_chat"))
	}
	e.roomSend(t, owner, rooms[0], 2)
	writers := map[string]bool{}
	var csv strings.Builder
	csv.WriteString("action,user_id,reason\n")
	for i := range 6 {
		w := e.roomUser(t, fmt.Sprintf("%s-w%d", p, i))
		writers[w.id] = true
		for _, r := range rooms {
			if err := e.client.Join(ctx, r, w.id); err != nil {
				t.Fatal(err)
			}
			e.roomSend(t, w, r, 3)
		}
		e.mustCall(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(rooms[2])+"/leave", w.token, map[string]any{}, nil)
		fmt.Fprintf(&csv, "redact,%s,gdpr %s\n", w.id, p)
	}
	writeFile(t, dir, "r.csv", csv.String())

	proxy := newFaultProxy(t, e.server, 0.30, f504after, fResetFirst, fResetAfter, f503)
	via := e.via(proxy.URL)
	jpath := filepath.Join(dir, "r.csv.journal.jsonl")
	via.killAtTask(t, dir, jpath, "apply", "r.csv", "--yes", "--concurrency", "3")
	for attempt := 0; ; attempt++ {
		res := via.synbatch(t, dir, "apply", "r.csv", "--yes", "--output", "json")
		if res.code == 0 {
			break
		}
		if attempt == 4 {
			t.Fatalf("apply still exits %d after %d resumes: %s", res.code, attempt+1, res.stderr)
		}
	}
	proxy.set(0)
	e.applyAgain(t, dir, "r.csv", "--yes")

	for _, r := range rooms {
		got := e.redactionsOf(t, r, writers)
		if len(got) != 6*4 { // each writer's join and three messages
			t.Fatalf("room %s: %d events of the writers, want 24", r, len(got))
		}
		for id, n := range got {
			if n != 1 {
				t.Errorf("room %s: event %s is named by %d redactions, want 1", r, id, n)
			}
		}
		for id, n := range e.redactionsOf(t, r, map[string]bool{owner.id: true}) {
			if n != 0 {
				t.Errorf("room %s: the owner's event %s was redacted", r, id)
			}
		}
	}
	// What another member reads, in the room the writers left as well.
	for w := range writers {
		for _, ev := range e.sentBy(t, owner, rooms[2], w) {
			if content, _ := ev["content"].(map[string]any); ev["type"] == "m.room.message" && content["body"] != nil {
				t.Fatalf("left room: message %v of %s still reads %v", ev["event_id"], w, content["body"])
			}
		}
	}
}
