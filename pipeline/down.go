package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// downWatch handles a server that stopped answering: the first worker to
// notice starts one prober; every worker waits for it, so no row is taken
// and none is marked failed while the server is away. If it stays away past
// the limit, the run stops (a resume finishes it). The prober ends with the
// run's context.
type downWatch struct {
	client    *synapse.Client
	threshold int64         // failures in a row that mean "down"
	limit     time.Duration // how long to wait for it
	log       io.Writer

	mu  sync.Mutex
	up  chan struct{} // closed when the probing ends; nil when not probing
	err error         // why probing ended, nil when the server is back
}

// errServerAway is a server that stayed away past the down limit.
var errServerAway = errors.New("server unreachable")

// isDown reports whether the client's failures say the server is away.
func (d *downWatch) isDown() bool { return d.client.Failing() >= d.threshold }

// wait blocks until the server answers again, or returns why it gave up.
// The prober it may start runs under ctx: give it the run's context.
func (d *downWatch) wait(ctx context.Context) error {
	d.mu.Lock()
	if d.up == nil {
		d.up, d.err = make(chan struct{}), nil
		go d.probe(ctx, d.up)
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

// hold is the retry loop's Hold for apply: a connection or gateway failure
// while the server is away is waited out without spending an attempt.
func (d *downWatch) hold(ctx context.Context, err error) (bool, error) {
	if !(synapse.IsNet(err) || synapse.IsGateway(err)) || !d.isDown() {
		return false, nil
	}
	if werr := d.wait(ctx); werr != nil {
		return false, werr
	}
	return true, nil
}

// Probing waits grow from probeFirst to probeMax (with full jitter); each
// probe may take probeTimeout.
const (
	probeFirst   = 500 * time.Millisecond
	probeMax     = 15 * time.Second
	probeTimeout = 10 * time.Second
)

func (d *downWatch) probe(ctx context.Context, done chan struct{}) {
	start := time.Now()
	if d.log != nil {
		fmt.Fprintf(d.log, "synbatch: the server stopped answering; waiting for it (up to %s), no rows are taken meanwhile\n", d.limit)
	}
	r := synapse.Retry{Base: probeFirst, Cap: probeMax, Within: d.limit, Retryable: func(error) bool { return true }}
	_, err := r.Do(ctx, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		return d.client.Probe(pctx)
	})
	d.mu.Lock()
	switch {
	case ctx.Err() != nil:
		d.err = ctx.Err()
	case err != nil:
		d.err = fmt.Errorf("%w for %s (last: %v)", errServerAway, time.Since(start).Round(time.Second), err)
	case d.log != nil:
		fmt.Fprintf(d.log, "synbatch: the server answers again after %s; going on\n", time.Since(start).Round(time.Second))
	}
	d.up = nil
	d.mu.Unlock()
	close(done)
}
