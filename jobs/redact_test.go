package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// redactServer is a user, their events by room, and their redaction
// tasks: statuses are handed out in turn (the last repeats); every write is
// recorded in order. Like Synapse 1.160, a redaction redacts every event of
// the user in the rooms it is given, redacted before or not.
type redactServer struct {
	mu          sync.Mutex
	deactivated bool
	statuses    []string
	failed      string // an event every task fails to redact
	polls       int
	writes      []string
	// memberships is what the memberships endpoint lists; gone are rooms
	// no local member is in (only the room list names them).
	memberships map[string]string
	gone        []string
	events      map[string][]string // room -> the user's event ids
	redactions  map[string]int      // event id -> redactions of it
	posted      [][]string          // the rooms of each redaction started
	loseAnswer  bool                // the next redaction starts, its answer is lost
	active      string              // a running task the task list shows
}

// newRedactServer has the user in one room with two events, neither redacted.
func newRedactServer(statuses ...string) *redactServer {
	return &redactServer{statuses: statuses, memberships: map[string]string{"!a:hs": "join"},
		events: map[string][]string{"!a:hs": {"$a1", "$a2"}}, redactions: map[string]int{}}
}

func (s *redactServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v2/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		d := "false"
		if s.deactivated {
			d = "true"
		}
		w.Write([]byte(`{"name":"@u:hs","deactivated":` + d + `,"external_ids":[{"auth_provider":"oidc","external_id":"u1"}]}`))
	})
	mux.HandleFunc("GET /_synapse/admin/v1/users/{id}/memberships", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"memberships": s.memberships})
	})
	mux.HandleFunc("GET /_synapse/admin/v1/rooms", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var rooms []map[string]any
		for room := range s.memberships {
			rooms = append(rooms, map[string]any{"room_id": room, "joined_local_members": 1})
		}
		for _, room := range s.gone {
			rooms = append(rooms, map[string]any{"room_id": room, "joined_local_members": 0})
		}
		json.NewEncoder(w).Encode(map[string]any{"rooms": rooms, "total_rooms": len(rooms)})
	})
	mux.HandleFunc("GET /_synapse/admin/v1/rooms/{room}/messages", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		chunk := []map[string]any{}
		for _, id := range s.events[r.PathValue("room")] {
			ev := map[string]any{"type": "m.room.message", "event_id": id, "sender": "@u:hs", "content": map[string]any{}}
			if s.redactions[id] > 0 {
				ev["unsigned"] = map[string]any{"redacted_because": map[string]any{"type": "m.room.redaction"}}
			}
			chunk = append(chunk, ev)
		}
		json.NewEncoder(w).Encode(map[string]any{"chunk": chunk})
	})
	mux.HandleFunc("GET /_synapse/admin/v1/scheduled_tasks", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		tasks := []map[string]any{}
		if s.active != "" {
			tasks = append(tasks, map[string]any{"id": s.active, "status": "active"})
		}
		json.NewEncoder(w).Encode(map[string]any{"scheduled_tasks": tasks})
	})
	mux.HandleFunc("GET /_synapse/admin/v1/user/redact_status/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.statuses[min(s.polls, len(s.statuses)-1)]
		s.polls++
		if st != "active" {
			s.active = ""
		}
		failed := map[string]string{}
		if s.failed != "" {
			failed[s.failed] = "not allowed"
		}
		json.NewEncoder(w).Encode(map[string]any{"status": st, "failed_redactions": failed})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodGet {
			http.NotFound(w, r)
			return
		}
		s.writes = append(s.writes, r.Method+" "+r.URL.Path)
		if !strings.HasSuffix(r.URL.Path, "/redact") {
			w.Write([]byte(`{}`))
			return
		}
		var body struct{ Rooms []string }
		json.NewDecoder(r.Body).Decode(&body)
		s.posted = append(s.posted, body.Rooms)
		for _, room := range body.Rooms {
			for _, id := range s.events[room] {
				if id != s.failed {
					s.redactions[id]++
				}
			}
		}
		if s.loseAnswer {
			s.loseAnswer, s.active = false, "second"
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.Write([]byte(`{"redact_id":"second"}`))
	})
	return mux
}

func TestResumedRedactPollsItsTaskAndStartsNone(t *testing.T) {
	srv := newRedactServer("active", "complete")
	srv.redactions = map[string]int{"$a1": 1, "$a2": 1} // what task "first" did
	hs := httptest.NewServer(srv.handler())
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, probs := Parse(row("action", "redact", "user_id", "@u:hs", "reason", "spam"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	st := &State{Begun: true, TaskID: "first"}
	res, err := j.Run(context.Background(), Env{Client: c, Task: func(string) error { t.Error("a task was journaled again"); return nil }}, st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != journal.Done || len(srv.writes) != 0 || srv.polls < 2 || st.TaskID != "first" {
		t.Fatalf("result %+v, writes %v, polls %d, task %q", res, srv.writes, srv.polls, st.TaskID)
	}
}

// TestRedactFailedEventsFailTheRowAndAreRetried: a task that ends complete
// with events it could not redact fails the row; the row run again starts
// a new redaction to retry them (the old task would only say the same).
func TestRedactFailedEventsFailTheRowAndAreRetried(t *testing.T) {
	srv := newRedactServer("complete")
	srv.failed = "$a2"
	srv.redactions["$a1"] = 1 // task "first" redacted one of the two
	hs := httptest.NewServer(srv.handler())
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, _ := Parse(row("action", "redact", "user_id", "@u:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
	st := &State{Begun: true, TaskID: "first"}
	_, err := j.Run(context.Background(), Env{Client: c}, st)
	if !IsRowError(err) || !strings.Contains(err.Error(), "redaction second left 1 event unredacted ($a2: not allowed)") {
		t.Fatalf("err %v", err)
	}
	if len(srv.posted) != 1 || st.TaskID != "second" {
		t.Fatalf("posts %v, task %q: want one new redaction", srv.posted, st.TaskID)
	}
}

func TestDeactivateRedactsAndClearsExternalIDsBeforeDeactivating(t *testing.T) {
	srv := newRedactServer("complete")
	hs := httptest.NewServer(srv.handler())
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, probs := Parse(row("action", "deactivate", "user_id", "@u:hs", "redact", "true", "clear", "external_ids"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	st := &State{}
	var journaled []string
	res, err := j.Run(context.Background(), Env{Client: c, Task: func(id string) error { journaled = append(journaled, id); return nil }}, st)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /_synapse/admin/v1/user/@u:hs/redact", "PUT /_synapse/admin/v2/users/@u:hs", "POST /_synapse/admin/v1/deactivate/@u:hs"}
	if res.Outcome != journal.Done || strings.Join(srv.writes, "|") != strings.Join(want, "|") || len(journaled) != 1 || journaled[0] != "second" {
		t.Fatalf("result %+v, writes %v, journaled %v", res, srv.writes, journaled)
	}
}

func TestDeactivateClearRefusesOtherFields(t *testing.T) {
	_, probs := Parse(row("action", "deactivate", "user_id", "@u:hs", "clear", "emails"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) != 1 || probs[0].Column != "clear" || !strings.Contains(probs[0].Msg, "only external_ids") {
		t.Fatalf("problems %v", probs)
	}
}

// TestRedactCoversLeftRoomsAndSendsOnlyWhatIsLeft: a redact row without
// rooms covers the rooms the user left and the rooms every local member
// left, skips rooms whose events are all redacted (Synapse would redact
// them again) and rooms where the user wrote nothing, and lists them in the
// plan; the row again plans unchanged and sends nothing.
func TestRedactCoversLeftRoomsAndSendsOnlyWhatIsLeft(t *testing.T) {
	srv := newRedactServer("complete")
	srv.memberships = map[string]string{"!a:hs": "join", "!left:hs": "leave", "!done:hs": "join", "!quiet:hs": "join"}
	srv.gone = []string{"!gone:hs"}
	srv.events = map[string][]string{"!a:hs": {"$a1"}, "!left:hs": {"$l1", "$l2"}, "!done:hs": {"$d1"}, "!gone:hs": {"$g1"}}
	srv.redactions = map[string]int{"$d1": 1}
	hs := httptest.NewServer(srv.handler())
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, _ := Parse(row("action", "redact", "user_id", "@u:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
	p, err := j.PlanRow(context.Background(), Env{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "; ")
	if p.Kind != KindUpdate || !strings.Contains(notes, "!left:hs (leave): 2 of 2 to redact") || !strings.Contains(notes, "!gone:hs (leave): 1 of 1") ||
		!strings.Contains(notes, "!done:hs: 1 redacted already") || strings.Contains(notes, "!quiet:hs") {
		t.Fatalf("plan %+v", p)
	}
	if _, err := j.Run(context.Background(), Env{Client: c}, &State{}); err != nil {
		t.Fatal(err)
	}
	if len(srv.posted) != 1 || !slices.Equal(srv.posted[0], []string{"!a:hs", "!gone:hs", "!left:hs"}) {
		t.Fatalf("redactions started for rooms %v, want one for !a, !gone and !left", srv.posted)
	}
	for id, n := range srv.redactions {
		if n != 1 {
			t.Errorf("event %s redacted %d times", id, n)
		}
	}
	p, err = j.PlanRow(context.Background(), Env{Client: c})
	if err != nil || p.Kind != KindUnchanged {
		t.Fatalf("plan again: %+v %v, want unchanged", p, err)
	}
}

// TestRedactLostAnswerIsReadBackNotStartedAgain: the answer to the request
// that started a redaction is lost; the row tried again finds the task in
// the server's task list, journals and polls it, and starts no second one.
func TestRedactLostAnswerIsReadBackNotStartedAgain(t *testing.T) {
	srv := newRedactServer("active", "complete")
	srv.loseAnswer = true
	hs := httptest.NewServer(srv.handler())
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, _ := Parse(row("action", "redact", "user_id", "@u:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
	var journaled []string
	env := Env{Client: c, Task: func(id string) error { journaled = append(journaled, id); return nil }}
	st := &State{}
	if _, err := j.Run(context.Background(), env, st); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	res, err := j.Run(context.Background(), env, st)
	if err != nil || res.Outcome != journal.Done {
		t.Fatalf("again: %+v %v", res, err)
	}
	if len(srv.posted) != 1 || !slices.Equal(journaled, []string{"second"}) || srv.redactions["$a1"] != 1 || srv.redactions["$a2"] != 1 {
		t.Fatalf("posts %v, journaled %v, redactions %v: want the one task read back", srv.posted, journaled, srv.redactions)
	}
}
