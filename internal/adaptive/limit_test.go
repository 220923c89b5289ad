package adaptive

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// round releases one round of rows (as many as allowed in flight) that
// each took latency.
func round(t *testing.T, l *Limit, latency time.Duration, overloaded bool) {
	t.Helper()
	n, _ := l.Level()
	for range n {
		if err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		l.Release(latency, overloaded)
	}
}

func TestAdaptiveLimitGrowsWhileLatencyHolds(t *testing.T) {
	l := New(0, 10)
	if now, _ := l.Level(); now != 4 {
		t.Fatalf("starts at %d, want 4", now)
	}
	for range 10 {
		round(t, l, 10*time.Millisecond, false)
	}
	if now, reached := l.Level(); now != 10 || reached != 10 {
		t.Fatalf("level %d (reached %d), want the maximum 10", now, reached)
	}
}

func TestAdaptiveLimitShrinksWhenLatencyClimbs(t *testing.T) {
	l := New(0, 32)
	for range 4 {
		round(t, l, 10*time.Millisecond, false)
	}
	before, _ := l.Level()
	// Near the baseline (up to 1.5×) it still grows; between 1.5× and 2×
	// it holds; past 2× requests queue inside the server: it shrinks.
	round(t, l, 14*time.Millisecond, false)
	if now, _ := l.Level(); now != before+1 {
		t.Fatalf("at 1.4× the baseline: %d, want %d", now, before+1)
	}
	held, _ := l.Level()
	round(t, l, 18*time.Millisecond, false)
	if now, _ := l.Level(); now != held {
		t.Fatalf("at 1.8× the baseline: %d, want it held at %d", now, held)
	}
	for range 5 {
		round(t, l, 50*time.Millisecond, false)
	}
	if now, reached := l.Level(); now >= held || reached != held {
		t.Fatalf("at 5× the baseline: %d (reached %d), want below %d", now, reached, held)
	}
}

func TestAdaptiveLimitCutsOnOverloadOncePerBaseline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(0, 32)
		for range 6 {
			round(t, l, 200*time.Millisecond, false)
		}
		before, _ := l.Level() // 10
		// A 429, a 5xx or a lost connection cuts by a quarter; many rows
		// meeting the same overload at once are one signal.
		time.Sleep(time.Second)
		for range 3 {
			_ = l.Acquire(context.Background())
			l.Release(time.Millisecond, true)
		}
		after, _ := l.Level()
		if want := int(float64(before) * 0.75); after != want {
			t.Fatalf("after one overload: %d, want %d", after, want)
		}
		// The round the overload fell in does not grow; the next one does.
		round(t, l, 200*time.Millisecond, false)
		if now, _ := l.Level(); now != after {
			t.Fatalf("the overloaded round grew: %d, want %d", now, after)
		}
		round(t, l, 200*time.Millisecond, false)
		if now, _ := l.Level(); now != after+1 {
			t.Fatalf("after a good round: %d, want %d", now, after+1)
		}
		time.Sleep(time.Second)
		_ = l.Acquire(context.Background())
		l.Release(time.Millisecond, true)
		if now, _ := l.Level(); now != int(float64(after+1)*0.75) {
			t.Fatalf("a later overload: %d, want %d", now, int(float64(after+1)*0.75))
		}
	})
}

func TestFixedLimitNeverMoves(t *testing.T) {
	l := New(3, 32)
	round(t, l, time.Millisecond, true)
	round(t, l, time.Second, false)
	if now, reached := l.Level(); now != 3 || reached != 3 {
		t.Fatalf("fixed limit moved: %d, %d", now, reached)
	}
}

func TestAcquireWaitsForRoomAndEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		if err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- l.Acquire(ctx) }()
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
		go func() { got <- l.Acquire(context.Background()) }()
		synctest.Wait()
		l.Release(time.Millisecond, false)
		if err := <-got; err != nil {
			t.Fatalf("acquire after a release: %v", err)
		}
	})
}
