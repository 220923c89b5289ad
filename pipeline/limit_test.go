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
	"github.com/synbatch/synbatch/synapse"
)

// round releases one round of rows (as many as allowed in flight) that
// each took latency.
func round(t *testing.T, l *concLimit, latency time.Duration, overloaded bool) {
	t.Helper()
	n, _ := l.level()
	for range n {
		if err := l.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		l.release(latency, overloaded)
	}
}

func TestAdaptiveLimitGrowsWhileLatencyHolds(t *testing.T) {
	l := newConcLimit(0, 10)
	if now, _ := l.level(); now != 4 {
		t.Fatalf("starts at %d, want 4", now)
	}
	for range 10 {
		round(t, l, 10*time.Millisecond, false)
	}
	if now, reached := l.level(); now != 10 || reached != 10 {
		t.Fatalf("level %d (reached %d), want the maximum 10", now, reached)
	}
}

func TestAdaptiveLimitShrinksWhenLatencyClimbs(t *testing.T) {
	l := newConcLimit(0, 32)
	for range 4 {
		round(t, l, 10*time.Millisecond, false)
	}
	before, _ := l.level()
	// Near the baseline (up to 1.5×) it still grows; between 1.5× and 2×
	// it holds; past 2× requests queue inside the server: it shrinks.
	round(t, l, 14*time.Millisecond, false)
	if now, _ := l.level(); now != before+1 {
		t.Fatalf("at 1.4× the baseline: %d, want %d", now, before+1)
	}
	held, _ := l.level()
	round(t, l, 18*time.Millisecond, false)
	if now, _ := l.level(); now != held {
		t.Fatalf("at 1.8× the baseline: %d, want it held at %d", now, held)
	}
	for range 5 {
		round(t, l, 50*time.Millisecond, false)
	}
	if now, reached := l.level(); now >= held || reached != held {
		t.Fatalf("at 5× the baseline: %d (reached %d), want below %d", now, reached, held)
	}
}

func TestAdaptiveLimitCutsOnOverloadOncePerBaseline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newConcLimit(0, 32)
		for range 6 {
			round(t, l, 200*time.Millisecond, false)
		}
		before, _ := l.level() // 10
		// A 429, a 5xx or a lost connection cuts by a quarter; many rows
		// meeting the same overload at once are one signal.
		time.Sleep(time.Second)
		for range 3 {
			_ = l.acquire(context.Background())
			l.release(time.Millisecond, true)
		}
		after, _ := l.level()
		if want := int(float64(before) * 0.75); after != want {
			t.Fatalf("after one overload: %d, want %d", after, want)
		}
		// The round the overload fell in does not grow; the next one does.
		round(t, l, 200*time.Millisecond, false)
		if now, _ := l.level(); now != after {
			t.Fatalf("the overloaded round grew: %d, want %d", now, after)
		}
		round(t, l, 200*time.Millisecond, false)
		if now, _ := l.level(); now != after+1 {
			t.Fatalf("after a good round: %d, want %d", now, after+1)
		}
		time.Sleep(time.Second)
		_ = l.acquire(context.Background())
		l.release(time.Millisecond, true)
		if now, _ := l.level(); now != int(float64(after+1)*0.75) {
			t.Fatalf("a later overload: %d, want %d", now, int(float64(after+1)*0.75))
		}
	})
}

func TestFixedLimitNeverMoves(t *testing.T) {
	l := newConcLimit(3, 32)
	round(t, l, time.Millisecond, true)
	round(t, l, time.Second, false)
	if now, reached := l.level(); now != 3 || reached != 3 {
		t.Fatalf("fixed limit moved: %d, %d", now, reached)
	}
}

func TestAcquireWaitsForRoomAndEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newConcLimit(1, 1)
		if err := l.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- l.acquire(ctx) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("acquire did not wait for room: %v", err)
		default:
		}
		cancel()
		synctest.Wait()
		if err := <-got; err != context.Canceled {
			t.Fatalf("acquire after cancel: %v", err)
		}
		go func() { got <- l.acquire(context.Background()) }()
		synctest.Wait()
		l.release(time.Millisecond, false)
		if err := <-got; err != nil {
			t.Fatalf("acquire after a release: %v", err)
		}
	})
}

func TestDownWatchProberEndsWithItsContext(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	addr := hs.URL
	hs.Close() // nothing listens there now: every probe is refused
	c, _ := synapse.New(synapse.Config{Server: addr, Token: "t"})
	d := &downWatch{client: c, threshold: 1, limit: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- d.wait(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("wait: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		d.mu.Lock()
		probing := d.up != nil
		d.mu.Unlock()
		if !probing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the prober still runs after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
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
