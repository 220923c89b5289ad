package synapse

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/adaptive"
	"github.com/synbatch/synbatch/internal/fakesynapse"
)

// inFlightServer answers after 10ms and records the most requests it had
// at once. Its tests run in a synctest bubble: the sleep is the server's
// service time on the bubble's clock (it passes at once, in order, when
// every goroutine waits), which is what makes requests overlap; it does
// not wait for a state.
type inFlightServer struct {
	mu        sync.Mutex
	now, most int
	status    int // 0: 200
}

func (s *inFlightServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	status := s.status
	s.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	s.mu.Lock()
	s.now--
	s.mu.Unlock()
	w.WriteHeader(max(status, 200))
	w.Write([]byte(`{}`))
}

// mostInFlight sends n requests at once through c and returns the most
// the server had at once.
func mostInFlight(t *testing.T, srv *inFlightServer, c *Client, n int) int {
	t.Helper()
	srv.mu.Lock()
	srv.most = 0
	srv.mu.Unlock()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.GetUser(context.Background(), "@a:hs.test"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return srv.most
}

// The exports bound every request by an adaptive limit through
// WithInFlight: the limit must hold the requests, hear of overload, and
// leave the client it came from (apply's, which bounds rows) alone, while
// both share one pause and one count.
func TestWithInFlightBoundsRequestsAndSharesTheClientsPauseAndCounts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := &inFlightServer{}
		c, err := New(Config{Server: "http://hs.test", Token: "t", Transport: fakesynapse.InMemory(srv)})
		if err != nil {
			t.Fatal(err)
		}
		bounded := c.WithInFlight(adaptive.New(2, 2))
		if most := mostInFlight(t, srv, bounded, 10); most != 2 {
			t.Errorf("through a limit of 2: %d requests in flight at once, want 2", most)
		}
		if most := mostInFlight(t, srv, c, 10); most <= 2 {
			t.Errorf("through the client the limit came from: at most %d in flight, want all 10 free of the limit", most)
		}
		if got := c.Requests(); got != 20 {
			t.Errorf("the client counted %d requests, want 20 (its own and the bounded one's)", got)
		}

		c.Pause(150 * time.Millisecond)
		start := time.Now()
		if _, err := bounded.GetUser(context.Background(), "@a:hs.test"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("a bounded request left %v into the client's pause of 150ms", d)
		}

		// An adaptive limit hears of a 503 and cuts its level (from 4).
		lim := adaptive.New(0, 8)
		srv.status = http.StatusServiceUnavailable
		c.WithInFlight(lim).GetUser(context.Background(), "@a:hs.test")
		if now, _ := lim.Level(); now >= 4 {
			t.Errorf("after a 503 the adaptive level is %d, want it cut below 4", now)
		}
	})
}
