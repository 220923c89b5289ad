// Package adaptive decides how many requests (or rows) are in flight at
// once: fixed, or adapted to the server's latency. Apply and the exports
// share it, so both back off the same way when the server is loaded.
package adaptive

import (
	"context"
	"sync"
	"time"
)

// Limit decides how many rows (or requests) are in flight. Fixed, it is a plain
// semaphore. Adaptive, it works like TCP Vegas: it keeps the lowest round
// latency seen as the server's unloaded speed, adds a row in flight each
// round whose latency stays near it (the server has room), takes some away
// when latency climbs (requests are queueing inside the server, which adds
// time and no throughput), and cuts by a quarter on 429s, 5xx and lost
// connections. A round is as many rows as are allowed in flight.
type Limit struct {
	mu       sync.Mutex
	cond     *sync.Cond
	limit    float64
	max      int
	fixed    bool
	inflight int
	reached  int

	baseline   time.Duration // lowest round latency seen, re-learnt slowly
	roundN     int
	roundSum   time.Duration
	roundBad   bool
	lastShrink time.Time
}

// New returns a limit of fixed in flight, or with fixed 0 one that adapts
// between 1 and max, starting at 4.
func New(fixed, max int) *Limit {
	l := &Limit{max: max}
	if fixed > 0 {
		l.limit, l.fixed, l.max = float64(fixed), true, fixed
	} else {
		l.limit = float64(min(4, max))
	}
	l.reached = int(l.limit)
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Acquire waits for room for one more row.
func (l *Limit) Acquire(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.inflight >= int(l.limit) {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.cond.Wait()
	}
	l.inflight++
	return nil
}

// Release ends one row that took latency; overloaded says it met a 429, a
// 5xx or a lost connection on the way.
func (l *Limit) Release(latency time.Duration, overloaded bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	defer l.cond.Broadcast()
	if l.fixed {
		return
	}
	if overloaded {
		// At most one cut per baseline of time: one overload seen by many
		// rows at once is one signal, not many.
		if time.Since(l.lastShrink) > max(l.baseline, 100*time.Millisecond) {
			l.limit = max(1, l.limit*0.75)
			l.lastShrink = time.Now()
		}
		l.roundBad = true
		return
	}
	l.roundN++
	l.roundSum += latency
	if l.roundN < int(l.limit) {
		return
	}
	avg := l.roundSum / time.Duration(l.roundN)
	bad := l.roundBad
	l.roundN, l.roundSum, l.roundBad = 0, 0, false
	if l.baseline == 0 || avg < l.baseline {
		l.baseline = avg
	} else {
		// Drift up slowly, so a server that got slower for good is re-learnt.
		l.baseline += (avg - l.baseline) / 50
	}
	switch {
	case bad:
	case avg <= l.baseline*3/2:
		l.limit = min(float64(l.max), l.limit+1)
	case avg > l.baseline*2:
		l.limit = max(1, l.limit*0.9)
	}
	l.reached = max(l.reached, int(l.limit))
}

// Level returns the rows allowed in flight now, and the most ever allowed.
func (l *Limit) Level() (now, reached int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit), l.reached
}

// Busy is the rows in flight now (at most the level, fewer when rows are
// waiting on the rate or the manifest ends).
func (l *Limit) Busy() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}
