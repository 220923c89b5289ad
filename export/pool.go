package export

import (
	"cmp"
	"context"

	"github.com/synbatch/synbatch/internal/adaptive"
	"github.com/synbatch/synbatch/synapse"
)

// defaultMaxConcurrency bounds the adaptive level when the caller gives
// no ceiling, as apply's does.
const defaultMaxConcurrency = 32

// inFlight returns the context an export's requests run under and how many
// users or rooms it works on at once. A fixed concurrency is both; 0 puts
// every request (list pages, each user's or room's reads) under one
// adaptive level, apply's, that follows the server's latency up to
// maxConc, with as many workers as it may allow.
func inFlight(ctx context.Context, concurrency, maxConc int) (context.Context, int) {
	if concurrency > 0 {
		return ctx, concurrency
	}
	maxConc = cmp.Or(max(maxConc, 0), defaultMaxConcurrency)
	return synapse.WithInFlight(ctx, adaptive.New(0, maxConc)), maxConc
}
