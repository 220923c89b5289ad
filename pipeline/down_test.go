package pipeline

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/internal/testenv"
	"github.com/synbatch/synbatch/synapse"
)

func TestDownWatchProberEndsWithItsContext(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	addr := hs.URL
	hs.Close() // nothing listens there now: every probe is refused
	c, _ := synapse.New(synapse.Config{Server: addr, Token: "t"})
	d := &downWatch{client: c, threshold: 1, limit: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- d.wait(ctx) }()
	// Cancel only once the prober runs, however long the machine takes to
	// start it.
	waitFor(t, "the prober to start", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.up != nil
	})
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("wait: %v", err)
	}
	waitFor(t, "the prober to end after its context", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.up == nil
	})
}

// waitFor polls cond until it holds, failing after a generous deadline: it
// waits for a state, not for a time that a loaded machine may overrun.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testenv.Await(30*time.Second, cond) {
		t.Fatalf("waited 30 s for %s", what)
	}
}

func TestDownWatchWaitsForTheServerToAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) < 3 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Write([]byte(`{"server_version":"1"}`))
		})
		c, _ := synapse.New(synapse.Config{Server: "http://hs.test", Token: "t", Transport: fakesynapse.InMemory(h)})
		var log strings.Builder
		d := &downWatch{client: c, threshold: 1, limit: time.Minute, log: &log}
		start := time.Now()
		if err := d.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Two failed probes: waits of at most probeFirst and 2×probeFirst.
		if calls.Load() != 3 || !strings.Contains(log.String(), "answers again") || time.Since(start) > 3*probeFirst {
			t.Fatalf("%d probes in %s, log %q", calls.Load(), time.Since(start), log.String())
		}
		// A server away past the limit stops the run with errServerAway.
		d = &downWatch{client: c, threshold: 1, limit: time.Minute}
		calls.Store(-1000)
		start = time.Now()
		if err := d.wait(context.Background()); !errors.Is(err, errServerAway) || time.Since(start) > time.Minute+probeMax {
			t.Fatalf("past the limit: %v after %s", err, time.Since(start))
		}
	})
}
