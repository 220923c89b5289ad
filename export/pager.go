package export

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// pager pages through one of the server's lists (users, rooms) and hands
// each new item to a pool of workers: what every table export but the
// unpaged registration tokens does.
//
// Synapse's lists page by offset (next_token is from + the page's length),
// so a write between two pages can shift the list and send an item twice:
// the pager drops an id it has seen. MAS's user list pages by cursor, and
// may send an empty page (after filtering) before its end.
type pager[T any] struct {
	what string // the list, for its errors: "list users: …"
	// list reads the page after cursor from; "" is the first page. Its
	// next is "" at the end. It is retried as every list request is.
	list func(ctx context.Context, from string) (page []T, next string, err error)
	id   func(T) string // the item's id, for dedupe and for its errors
	// seen holds the ids already handled, and grows as the pager goes; a
	// caller may start it with what an interrupted run did. nil is empty.
	seen map[string]bool
	// emptyPagesGoOn: an empty page is not the end, only an empty next is
	// (MAS's filtered cursor pages). Synapse's empty page ends the list.
	emptyPagesGoOn bool
	// workers is how many items are worked on at once, as inFlight gives
	// it with the client (limited by the adaptive level) that list and
	// the jobs send through.
	workers int
}

// pageJob is the work on one listed item, done on a worker: fetch reads
// what the list leaves out, and its error is reported with the item's id;
// keep, when set, records the result after a fetch that succeeded, and
// its error is passed on as it is (the item is not at fault).
type pageJob struct {
	fetch func(ctx context.Context) error
	keep  func() error
}

// run pages through the list to its end. visit is called once per new
// item, in the list's order, from one goroutine; the job it returns runs
// on one of the workers, which share one errgroup. The first error (an
// item's, a list request's, or the context's) ends the run: the group's
// context is cancelled, no further page is read, and run returns that
// error once every started job has returned.
func (p *pager[T]) run(ctx context.Context, visit func(T) pageJob) error {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(p.workers, 1))
	listErr := p.pages(gctx, func(item T) {
		id := p.id(item)
		if p.seen[id] {
			return
		}
		p.seen[id] = true
		job := visit(item)
		g.Go(func() error {
			if err := job.fetch(gctx); err != nil {
				return fmt.Errorf("read %s: %w", id, err)
			}
			if job.keep == nil {
				return nil
			}
			return job.keep()
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if listErr != nil {
		return listErr
	}
	return ctx.Err()
}

// pages reads page after page and calls each for every item on it, until
// the list ends, a request fails for good, or ctx is done.
func (p *pager[T]) pages(ctx context.Context, each func(T)) error {
	from := ""
	for {
		var page []T
		var next string
		err := listRetry(ctx, func() error {
			var err error
			page, next, err = p.list(ctx, from)
			return err
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", p.what, err)
		}
		for _, item := range page {
			each(item)
		}
		if next == "" || (len(page) == 0 && !p.emptyPagesGoOn) || ctx.Err() != nil {
			return nil
		}
		from = next
	}
}
