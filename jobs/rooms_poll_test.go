package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// taskServer answers a room's delete status: statuses are handed out in
// turn (the last one repeats). Any write is recorded.
type taskServer struct {
	mu       sync.Mutex
	statuses []string
	writes   []string
	polls    int
}

func (s *taskServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet {
		s.writes = append(s.writes, r.Method+" "+r.URL.Path)
		w.Write([]byte(`{"delete_id":"second"}`))
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/_synapse/admin/v2/rooms/delete_status/"):
		st := s.statuses[min(s.polls, len(s.statuses)-1)]
		s.polls++
		w.Write([]byte(`{"delete_id":"first","room_id":"!r:hs","status":"` + st + `"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errcode":"M_NOT_FOUND"}`))
	}
}

func TestResumedDeletePollsItsTaskAndStartsNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &taskServer{statuses: []string{"active", "active", "complete"}}
		// A rate of one request a minute: polling must not wait for it.
		c, _ := synapse.New(synapse.Config{Server: "http://hs.test", Token: "t", Rate: 1.0 / 60, Burst: 1, Transport: fakesynapse.InMemory(srv)})
		j, probs := Parse(row("action", "delete-room", "room_id", "!r:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		st := &State{Begun: true, TaskID: "first"}
		start := time.Now()
		res, err := j.Run(context.Background(), Env{Client: c, Task: func(string) error { t.Error("a task was journaled again"); return nil }}, st)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != journal.Done || res.UserID != "!r:hs" || len(srv.writes) != 0 || srv.polls != 3 {
			t.Fatalf("result %+v, writes %v, polls %d", res, srv.writes, srv.polls)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("polling took %s: it waited for the rate limiter", d)
		}
	})
}

func TestTaskTimeoutFailsTheRowAndKeepsTheTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &taskServer{statuses: []string{"active"}}
		c, _ := synapse.New(synapse.Config{Server: "http://hs.test", Token: "t", Transport: fakesynapse.InMemory(srv)})
		j, _ := Parse(row("action", "delete-room", "room_id", "!r:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
		st := &State{Begun: true, TaskID: "first"}
		_, err := j.Run(context.Background(), Env{Client: c, TaskTimeout: 300 * time.Millisecond}, st)
		if !IsRowError(err) || !strings.Contains(err.Error(), "room deletion first is still active after --task-timeout 300ms") {
			t.Fatalf("err %v", err)
		}
		if st.TaskID != "first" || len(srv.writes) != 0 {
			t.Fatalf("task %q, writes %v", st.TaskID, srv.writes)
		}
	})
}

func TestFailedTaskIsPlannedAgain(t *testing.T) {
	// The earlier task failed; the room still exists: a new deletion starts,
	// and its id is journaled before it is polled.
	srv := &taskServer{statuses: []string{"failed", "complete"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v1/rooms/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"room_id":"!r:hs","name":"Lobby","joined_members":3,"joined_local_members":3}`))
	})
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, _ := Parse(row("action", "delete-room", "room_id", "!r:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
	st := &State{Begun: true, TaskID: "first"}
	var journaled []string
	res, err := j.Run(context.Background(), Env{Client: c, Task: func(id string) error { journaled = append(journaled, id); return nil }}, st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != journal.Done || len(srv.writes) != 1 || srv.writes[0] != "DELETE /_synapse/admin/v2/rooms/!r:hs" ||
		len(journaled) != 1 || journaled[0] != "second" || st.TaskID != "second" {
		t.Fatalf("result %+v, writes %v, journaled %v, task %q", res, srv.writes, journaled, st.TaskID)
	}
}
