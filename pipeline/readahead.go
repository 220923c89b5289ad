package pipeline

import (
	"github.com/synbatch/synbatch/formats"
)

// readRow is a manifest row read ahead, or the reader's error.
type readRow struct {
	row formats.Row
	err error
}

// readAhead reads rows in a goroutine of its own, a batch at a time, while
// the run hashes them, checks them against the journal and dispatches
// them: a resume over a million finished rows spends its time reading
// rows and hashing them, about as long each, and the two overlap on a
// second core.
type readAhead struct {
	batches chan []readRow
	stop    chan struct{}
	done    chan struct{}
	cur     []readRow
}

const readAheadBatch = 256

func newReadAhead(r formats.Reader) *readAhead {
	ra := &readAhead{batches: make(chan []readRow, 4), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		defer close(ra.batches)
		for {
			batch := make([]readRow, 0, readAheadBatch)
			var err error
			for len(batch) < readAheadBatch && err == nil {
				var k readRow
				k.row, k.err = r.Next()
				err = k.err
				batch = append(batch, k)
			}
			select {
			case ra.batches <- batch:
			case <-ra.stop:
				return
			}
			if err != nil { // the end, or the reader's error: nothing follows
				return
			}
		}
	}()
	return ra
}

// next returns the next row and the reader's error (io.EOF at the end),
// in the order the reader gave them.
func (ra *readAhead) next() (formats.Row, error) {
	for len(ra.cur) == 0 {
		b, ok := <-ra.batches
		if !ok {
			panic("readAhead: next after the reader's error")
		}
		ra.cur = b
	}
	k := ra.cur[0]
	ra.cur = ra.cur[1:]
	return k.row, k.err
}

// close stops reading and waits for the goroutine, so the reader can be
// closed after it.
func (ra *readAhead) close() {
	close(ra.stop)
	<-ra.done
}
