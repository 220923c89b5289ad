package export

import (
	"cmp"

	"github.com/synbatch/synbatch/internal/adaptive"
	"github.com/synbatch/synbatch/synapse"
)

// defaultMaxConcurrency bounds the adaptive level when the caller gives
// no ceiling, as apply's does.
const defaultMaxConcurrency = 32

// inFlight returns the client an export sends its requests through and
// how many users or rooms it works on at once. A fixed concurrency is the
// number of workers, with c as it is; 0 puts every request (list pages,
// each user's or room's reads) under one adaptive level, apply's, that
// follows the server's latency up to maxConc, with as many workers as it
// may allow.
func inFlight(c *synapse.Client, concurrency, maxConc int) (*synapse.Client, int) {
	if concurrency > 0 {
		return c, concurrency
	}
	maxConc = cmp.Or(max(maxConc, 0), defaultMaxConcurrency)
	return c.WithInFlight(adaptive.New(0, maxConc)), maxConc
}
