package synapse

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"
)

// Retry is synbatch's one retry loop, used by apply, plan, the exports and
// the down-watch (in the manner of go-retryablehttp's Do and rclone's
// pacer): it decides what is tried again, how long to wait before the next
// try, and when to give up. Every wait is a select on the context.
//
// What is retried is Retryable (IsRetryable unless set). The wait is full
// jitter, a random time up to Base·2^(n-1) capped at Cap, so many workers'
// retries spread apart; after a 429 with a wait hint it is nothing, since
// the client's shared pause already holds every request until then.
// Rules that belong to one row (a password write whose answer was lost is
// not sent again) stay with the row: they are its try's business.
type Retry struct {
	// Attempts is the tries in all, counting the first; 0 has no bound (then
	// set Within).
	Attempts int
	Base     time.Duration // the first wait's ceiling; 0 means 500ms
	Cap      time.Duration // the longest wait; 0 means 30s
	// Within gives up once this long has passed since the first try; 0 has
	// no bound.
	Within time.Duration
	// Paced is how many 429s with a wait hint are waited out without
	// spending an attempt: the server pacing its clients is not a failure.
	// The bound ends a run against a server that only ever says "wait".
	Paced int
	// Retryable says which errors are tried again; nil means IsRetryable.
	Retryable func(error) bool
	// Hold, when set, sees each failure first. It may wait (for a server
	// that stopped answering to come back); free says the try is not
	// counted and the next one goes at once; an error ends the loop.
	Hold func(ctx context.Context, err error) (free bool, _ error)
}

// Do calls try until it succeeds, fails for good, or the attempts or time
// run out. It returns the tries counted and the last error (the context's
// when it ended during a wait).
func (r Retry) Do(ctx context.Context, try func(ctx context.Context) error) (int, error) {
	start := time.Now()
	paced, replanned := 0, false
	for n := 1; ; n++ {
		err := try(ctx)
		if err == nil || ctx.Err() != nil {
			return n, err
		}
		if r.Hold != nil {
			free, herr := r.Hold(ctx, err)
			if herr != nil {
				return n, herr
			}
			if free {
				n--
				continue
			}
		}
		// A refusal that planning again settles (Again) is tried once
		// more at once, beside the attempts: it is no fault of the server.
		var again *Again
		if errors.As(err, &again) && !replanned {
			replanned = true
			n--
			continue
		}
		if IsPacing(err) && paced < r.Paced {
			paced++
			n--
			continue // the shared pause holds the next request
		}
		if !r.retryable(err) || (r.Attempts > 0 && n >= r.Attempts) || (r.Within > 0 && time.Since(start) > r.Within) {
			return n, err
		}
		if werr := sleep(ctx, r.Wait(n, err)); werr != nil {
			return n, werr
		}
	}
}

func (r Retry) retryable(err error) bool {
	if r.Retryable != nil {
		return r.Retryable(err)
	}
	return IsRetryable(err)
}

// Wait is how long to wait after failed try n: nothing after a 429 with a
// hint (the shared pause holds every request), else full jitter.
func (r Retry) Wait(n int, err error) time.Duration {
	var se *Error
	if errors.As(err, &se) && se.Status == http.StatusTooManyRequests && se.RetryAfter > 0 {
		return 0
	}
	base, ceiling := r.Base, r.Cap
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if ceiling <= 0 {
		ceiling = maxBackoff
	}
	// Capped: a late retry waits at most the cap, not minutes.
	return time.Duration(rand.Int64N(int64(min(base<<min(n-1, 20), ceiling)) + 1))
}

// maxBackoff caps one retry's wait unless Retry.Cap says otherwise.
const maxBackoff = 30 * time.Second

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
