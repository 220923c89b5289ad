package export

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/synapse"
)

// queueing makes the fake answer like a server with room for knee
// requests at once: up to it each takes 10ms, past it the rest queue and
// each one more adds 10ms. It records the most requests seen in flight.
type queueing struct {
	knee     int
	mu       sync.Mutex
	inFlight int
	most     int
}

func (q *queueing) fault(http.ResponseWriter, *http.Request) bool {
	q.mu.Lock()
	q.inFlight++
	n := q.inFlight
	q.most = max(q.most, n)
	q.mu.Unlock()
	time.Sleep(10 * time.Millisecond * time.Duration(max(1, n-q.knee+1)))
	q.mu.Lock()
	q.inFlight--
	q.mu.Unlock()
	return false // the fake answers
}

// With no --concurrency an export follows the server as apply does: it
// goes past the fixed pool of 8 it had while answers keep their time, and
// stops growing where they start to queue, well below its ceiling.
func TestExportUsersAdaptsRequestsInFlightToTheServer(t *testing.T) {
	fake := fakesynapse.New("hs.test") // its handler only: the clock is synctest's
	t.Cleanup(fake.Close)
	for i := range 600 {
		fake.Put(fakesynapse.User{Name: fmt.Sprintf("@u%03d:hs.test", i)})
	}
	out := filepath.Join(t.TempDir(), "users.csv")
	synctest.Test(t, func(t *testing.T) {
		q := &queueing{knee: 14}
		fake.Fault = q.fault
		c, err := synapse.New(synapse.Config{Server: "http://hs.test", Token: fake.Token, Transport: fakesynapse.InMemory(fake.Config.Handler)})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Users(context.Background(), c, UsersConfig{Out: out, PageSize: 100, MaxConcurrency: 32})
		if err != nil {
			t.Fatal(err)
		}
		if res.Users != 601 { // and the admin
			t.Fatalf("exported %d users, want 601", res.Users)
		}
		if q.most <= 8 || q.most > 24 {
			t.Fatalf("at most %d requests in flight: want past 8 (the old fixed pool) and not far past the server's %d (the ceiling is 32)", q.most, q.knee)
		}
	})
}
