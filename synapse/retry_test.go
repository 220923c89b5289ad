package synapse

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryDecides checks what Retry.Do retries, what it counts and when it
// gives up, with the waits on synctest's clock.
func TestRetryDecides(t *testing.T) {
	e503 := &Error{Status: 503}
	e400 := &Error{Status: 400, Errcode: "M_BAD_JSON"}
	paced := &Error{Status: 429, Errcode: "M_LIMIT_EXCEEDED", RetryAfter: time.Second}
	spam := &Error{Status: 429, Errcode: "M_UNKNOWN"}
	lost := &NetError{Method: "PUT", Path: "/x", Sent: true, Err: errors.New("reset")}
	for _, c := range []struct {
		name  string
		r     Retry
		errs  []error // one per try; past the end, success
		tries int     // counted
		calls int
		err   error
	}{
		{"success at once", Retry{Attempts: 3}, nil, 1, 1, nil},
		{"5xx then success", Retry{Attempts: 3}, []error{e503, e503}, 3, 3, nil},
		{"attempts run out", Retry{Attempts: 2}, []error{e503, lost, e503}, 2, 2, lost},
		{"not retryable", Retry{Attempts: 5}, []error{e400}, 1, 1, e400},
		{"spam checker 429 is not retried", Retry{Attempts: 5}, []error{spam}, 1, 1, spam},
		{"paced 429s are free", Retry{Attempts: 2, Paced: 3}, []error{paced, paced, paced, e503}, 2, 5, nil},
		{"past Paced they count", Retry{Attempts: 2, Paced: 1}, []error{paced, paced, paced}, 2, 3, paced},
		{"own rule", Retry{Attempts: 3, Retryable: func(err error) bool { return err == e400 }}, []error{e400, e503}, 2, 2, e503},
		{"held tries are free", Retry{Attempts: 1, Hold: func(context.Context, error) (bool, error) { return true, nil }}, []error{lost, lost}, 1, 3, nil},
		{"hold gives up", Retry{Attempts: 5, Hold: func(context.Context, error) (bool, error) { return false, errTest }}, []error{lost}, 1, 1, errTest},
		{"within a time", Retry{Within: 10 * time.Second, Base: time.Second, Cap: 2 * time.Second}, manyErrs(100, e503), 0, 0, e503},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				tries, err := c.r.Do(context.Background(), func(context.Context) error {
					calls++
					if calls <= len(c.errs) {
						return c.errs[calls-1]
					}
					return nil
				})
				if err != c.err {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				if c.r.Within > 0 {
					if el := time.Since(start); el < c.r.Within || el > c.r.Within+c.r.Cap {
						t.Fatalf("gave up after %s, want about %s", el, c.r.Within)
					}
					return
				}
				if tries != c.tries || calls != c.calls {
					t.Fatalf("tries %d, calls %d; want %d, %d", tries, calls, c.tries, c.calls)
				}
			})
		})
	}
}

var errTest = errors.New("test")

func manyErrs(n int, err error) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestRetryWaitIsFullJitterCappedAndNothingAfterAHint(t *testing.T) {
	r := Retry{Base: 100 * time.Millisecond, Cap: time.Second}
	for n := 1; n <= 30; n++ {
		ceiling := min(r.Base<<(n-1), r.Cap)
		for range 20 {
			if d := r.Wait(n, &Error{Status: 503}); d < 0 || d > ceiling {
				t.Fatalf("try %d waited %s, want at most %s", n, d, ceiling)
			}
		}
	}
	if d := r.Wait(3, &Error{Status: 429, RetryAfter: time.Minute}); d != 0 {
		t.Fatalf("after a 429 with a hint: %s (the shared pause holds it)", d)
	}
	if d := (Retry{}).Wait(40, errTest); d > maxBackoff {
		t.Fatalf("default cap: %s", d)
	}
}

func TestRetryWaitEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		r := Retry{Attempts: 3, Base: time.Hour, Cap: time.Hour}
		done := make(chan error, 1)
		calls := 0
		go func() {
			_, err := r.Do(ctx, func(context.Context) error { calls++; return &Error{Status: 502} })
			done <- err
		}()
		synctest.Wait() // in its wait now (or done, if the jitter drew 0)
		cancel()
		if err := <-done; err != context.Canceled && calls < 3 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
}

// TestAgainIsTriedOnceMoreBesideTheAttempts: a refusal that planning again
// settles (Again) is retried at once without spending an attempt, once: a
// run with --retries 0 still settles a raced create, and a second Again is
// the row's error.
func TestAgainIsTriedOnceMoreBesideTheAttempts(t *testing.T) {
	again := &Again{Err: errors.New("taken")}
	calls := 0
	tries, err := Retry{Attempts: 1}.Do(context.Background(), func(context.Context) error {
		if calls++; calls == 1 {
			return again
		}
		return nil
	})
	if err != nil || calls != 2 || tries != 1 {
		t.Fatalf("err %v after %d calls, %d tries; want nil after 2 calls, 1 try", err, calls, tries)
	}
	calls = 0
	_, err = Retry{Attempts: 1}.Do(context.Background(), func(context.Context) error { calls++; return again })
	if !errors.Is(err, again) || calls != 2 {
		t.Fatalf("err %v after %d calls; want the Again after 2", err, calls)
	}
}
