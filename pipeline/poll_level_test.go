package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/synapse"
)

// roomDeletions makes the fake answer room deletions: each room exists
// until deleted, and its deletion task says "active" for taskTime after
// the DELETE, then "complete".
func roomDeletions(taskTime time.Duration) func(w http.ResponseWriter, r *http.Request) bool {
	var mu sync.Mutex
	started := map[string]time.Time{} // delete id -> when
	return func(w http.ResponseWriter, r *http.Request) bool {
		const admin = "/_synapse/admin"
		p := strings.TrimPrefix(r.URL.Path, admin)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(p, "/v2/rooms/delete_status/"):
			id := strings.TrimPrefix(p, "/v2/rooms/delete_status/")
			status := "active"
			if time.Since(started[id]) >= taskTime {
				status = "complete"
			}
			fmt.Fprintf(w, `{"delete_id":%q,"room_id":"!r:hs.test","status":%q}`, id, status)
		case strings.HasPrefix(p, "/v2/rooms/") && strings.HasSuffix(p, "/delete_status"):
			w.Write([]byte(`{"results":[]}`))
		case strings.HasPrefix(p, "/v2/rooms/") && r.Method == http.MethodDelete:
			id := "del-" + strings.TrimPrefix(p, "/v2/rooms/")
			started[id] = time.Now()
			fmt.Fprintf(w, `{"delete_id":%q}`, id)
		case strings.HasPrefix(p, "/v1/rooms/"):
			fmt.Fprintf(w, `{"room_id":%q,"joined_members":1,"joined_local_members":1}`, strings.TrimPrefix(p, "/v1/rooms/"))
		default:
			return false
		}
		return true
	}
}

// A delete-room row spends most of its time polling a task that says
// "still running": that is the task's time, not the server queueing
// requests, so it must not lower the adaptive level apply reached.
func TestPollingRowsDoNotLowerTheAdaptiveLevel(t *testing.T) {
	fake := fakesynapse.New("hs.test") // its handler only: the clock is synctest's
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("action,user_id,displayname,room_id\n")
	for i := range 300 {
		fmt.Fprintf(&b, "upsert,u%d,User %d,\n", i, i)
	}
	for i := range 16 {
		fmt.Fprintf(&b, "delete-room,,,!room%d:hs.test\n", i)
	}
	manifest := filepath.Join(dir, "m.csv")
	if err := os.WriteFile(manifest, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	src := Source{Path: manifest, Parse: jobs.ParseOptions{File: manifest, ServerName: "hs.test"}}
	ch, err := Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatalf("manifest: %v %v", err, ch.Problems)
	}
	synctest.Test(t, func(t *testing.T) {
		deletions := roomDeletions(time.Minute)
		fake.Fault = func(w http.ResponseWriter, r *http.Request) bool {
			time.Sleep(10 * time.Millisecond) // every answer takes as long, whatever the load
			return deletions(w, r)
		}
		c, err := synapse.New(synapse.Config{Server: "http://hs.test", Token: fake.Token, Transport: fakesynapse.InMemory(fake.Config.Handler)})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st, err := Apply(context.Background(), context.Background(), c, Config{Source: src, Checked: ch,
			Journal: filepath.Join(dir, "m.journal"), MaxConcurrency: 16, OnExists: jobs.ExistsUpdate})
		if err != nil {
			t.Fatal(err)
		}
		if st.Outcomes["done"] != 316 || time.Since(start) < time.Minute {
			t.Fatalf("outcomes %v after %s, want 316 done after the deletions' minute of polling", st.Outcomes, time.Since(start))
		}
		if st.ConcurrencyMax != 16 || st.Concurrency != st.ConcurrencyMax {
			t.Fatalf("level at the end %d, highest %d: rows polling a running task lowered it (want it held at 16)", st.Concurrency, st.ConcurrencyMax)
		}
	})
}
