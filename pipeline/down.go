package pipeline

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// downWatch handles a server that stopped answering: the first worker to
// notice starts one prober; every worker waits for it, so no row is taken
// and none is marked failed while the server is away. If it stays away past
// the limit, the run stops (a resume finishes it).
type downWatch struct {
	client    *synapse.Client
	threshold int64         // failures in a row that mean "down"
	limit     time.Duration // how long to wait for it
	log       io.Writer

	mu  sync.Mutex
	up  chan struct{} // closed when the probing ends; nil when not probing
	err error         // why probing ended, nil when the server is back
}

// isDown reports whether the client's failures say the server is away.
func (d *downWatch) isDown() bool { return d.client.Failing() >= d.threshold }

// wait blocks until the server answers again, or returns why it gave up.
func (d *downWatch) wait(ctx context.Context) error {
	d.mu.Lock()
	if d.up == nil {
		d.up, d.err = make(chan struct{}), nil
		go d.probe(d.up)
	}
	ch := d.up
	d.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.err
	}
}

func (d *downWatch) probe(done chan struct{}) {
	start := time.Now()
	if d.log != nil {
		fmt.Fprintf(d.log, "synbatch: the server stopped answering; waiting for it (up to %s), no rows are taken meanwhile\n", d.limit)
	}
	wait := 500 * time.Millisecond
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = d.client.Probe(ctx)
		cancel()
		if err == nil || time.Since(start) > d.limit {
			break
		}
		time.Sleep(wait)
		wait = min(wait*2, 15*time.Second)
	}
	d.mu.Lock()
	if err != nil {
		d.err = fmt.Errorf("server unreachable for %s (last: %v)", time.Since(start).Round(time.Second), err)
	} else if d.log != nil {
		fmt.Fprintf(d.log, "synbatch: the server answers again after %s; going on\n", time.Since(start).Round(time.Second))
	}
	d.up = nil
	d.mu.Unlock()
	close(done)
}
