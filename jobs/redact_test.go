package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// redactServer is a user and its redaction tasks: statuses are handed out
// in turn (the last repeats); every write is recorded in order.
type redactServer struct {
	mu          sync.Mutex
	deactivated bool
	statuses    []string
	polls       int
	writes      []string
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
	mux.HandleFunc("GET /_synapse/admin/v1/user/redact_status/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.statuses[min(s.polls, len(s.statuses)-1)]
		s.polls++
		w.Write([]byte(`{"status":"` + st + `","failed_redactions":{}}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodGet {
			http.NotFound(w, r)
			return
		}
		s.writes = append(s.writes, r.Method+" "+r.URL.Path)
		if strings.HasSuffix(r.URL.Path, "/redact") {
			w.Write([]byte(`{"redact_id":"second"}`))
			return
		}
		w.Write([]byte(`{}`))
	})
	return mux
}

func TestResumedRedactPollsItsTaskAndStartsNone(t *testing.T) {
	srv := &redactServer{statuses: []string{"active", "complete"}}
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v2/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"name":"@u:hs","deactivated":false}`))
	})
	mux.HandleFunc("GET /_synapse/admin/v1/user/redact_status/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"complete","failed_redactions":{"$e1":"not allowed"}}`))
	})
	var posts []string
	mux.HandleFunc("POST /_synapse/admin/v1/user/{id}/redact", func(w http.ResponseWriter, r *http.Request) {
		posts = append(posts, r.URL.Path)
		w.Write([]byte(`{"redact_id":"second"}`))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, _ := Parse(row("action", "redact", "user_id", "@u:hs"), ParseOptions{File: "m.csv", ServerName: "hs"})
	st := &State{Begun: true, TaskID: "first"}
	_, err := j.Run(context.Background(), Env{Client: c}, st)
	if !IsRowError(err) || !strings.Contains(err.Error(), "redaction second left 1 event unredacted ($e1: not allowed)") {
		t.Fatalf("err %v", err)
	}
	if len(posts) != 1 || st.TaskID != "second" {
		t.Fatalf("posts %v, task %q: want one new redaction", posts, st.TaskID)
	}
}

func TestDeactivateRedactsAndClearsExternalIDsBeforeDeactivating(t *testing.T) {
	srv := &redactServer{statuses: []string{"complete"}}
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
