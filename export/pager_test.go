package export

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeList serves pages of ids by cursor ("" is the first page) and
// counts the requests for each.
type fakeList struct {
	mu       sync.Mutex
	pages    map[string][]string
	next     map[string]string
	requests []string
}

func (f *fakeList) list(_ context.Context, from string) ([]string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, from)
	return f.pages[from], f.next[from], nil
}

func (f *fakeList) pager(concurrency int) *pager[string] {
	return &pager[string]{what: "things", list: f.list, id: func(s string) string { return s }, workers: concurrency}
}

// visitAll runs p with jobs that succeed, and returns the items visited.
func visitAll(p *pager[string]) ([]string, error) {
	var visited []string
	err := p.run(context.Background(), func(s string) pageJob {
		visited = append(visited, s)
		return pageJob{fetch: func(context.Context) error { return nil }}
	})
	return visited, err
}

// TestPagerShiftedListYieldsEachItemOnce: an offset list that shifted
// between two pages (c comes on both) gives every item to one visit and
// one fetch, in the list's order.
func TestPagerShiftedListYieldsEachItemOnce(t *testing.T) {
	t.Parallel()
	f := &fakeList{
		pages: map[string][]string{"": {"a", "b", "c"}, "3": {"c", "d"}, "5": {"d", "e"}},
		next:  map[string]string{"": "3", "3": "5"},
	}
	var visited []string
	var mu sync.Mutex
	fetched := map[string]int{}
	err := f.pager(4).run(context.Background(), func(s string) pageJob {
		visited = append(visited, s) // visit runs on one goroutine
		return pageJob{fetch: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			fetched[s]++
			return nil
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(visited, want) {
		t.Errorf("visited %v, want %v", visited, want)
	}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		if fetched[s] != 1 {
			t.Errorf("%s fetched %d times, want 1 (all: %v)", s, fetched[s], fetched)
		}
	}
	if want := []string{"", "3", "5"}; !slices.Equal(f.requests, want) {
		t.Errorf("requested pages %q, want %q", f.requests, want)
	}
}

// TestPagerSkipsSeenIDs: ids the caller already handled (an interrupted
// export's) are neither visited nor fetched.
func TestPagerSkipsSeenIDs(t *testing.T) {
	t.Parallel()
	f := &fakeList{pages: map[string][]string{"": {"a", "b", "c"}}}
	p := f.pager(1)
	p.seen = map[string]bool{"b": true}
	visited, err := visitAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "c"}; !slices.Equal(visited, want) {
		t.Errorf("visited %v, want %v", visited, want)
	}
}

// TestPagerItemErrorNamesItemAndStops: a fetch that fails is reported
// with the item's id, wrapping the cause, and stops the run: no further
// page is read. A keep error is passed on without the id.
func TestPagerItemErrorNamesItemAndStops(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	f := &fakeList{
		pages: map[string][]string{"": {"a", "b", "c"}, "3": {"d"}},
		next:  map[string]string{"": "3"},
	}
	// One worker: b's failure cancels the group before c's job starts.
	err := f.pager(1).run(context.Background(), func(s string) pageJob {
		return pageJob{fetch: func(context.Context) error {
			if s == "b" {
				return boom
			}
			return nil
		}}
	})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "read b: ") {
		t.Fatalf("err = %v, want read b: boom", err)
	}
	if want := []string{""}; !slices.Equal(f.requests, want) {
		t.Errorf("requested pages %q after the failure, want only %q", f.requests, want)
	}

	full := errors.New("disk full")
	err = f.pager(1).run(context.Background(), func(s string) pageJob {
		return pageJob{fetch: func(context.Context) error { return nil }, keep: func() error { return full }}
	})
	if err != full {
		t.Errorf("keep error = %v, want %v as it is", err, full)
	}
}

// TestPagerEmptyPages: Synapse's empty page ends the list; with
// emptyPagesGoOn (MAS's filtered cursor pages) only an empty next does.
func TestPagerEmptyPages(t *testing.T) {
	t.Parallel()
	for _, goOn := range []bool{false, true} {
		f := &fakeList{
			pages: map[string][]string{"": {}, "x": {"a"}},
			next:  map[string]string{"": "x"},
		}
		p := f.pager(1)
		p.emptyPagesGoOn = goOn
		visited, err := visitAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[goOn]; len(visited) != want {
			t.Errorf("emptyPagesGoOn=%t: visited %v, want %d items", goOn, visited, want)
		}
	}
}

// TestPagerListErrorSaysWhichList: a list request that fails for good is
// the run's error, named by the list.
func TestPagerListErrorSaysWhichList(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	p := &pager[string]{what: "things", id: func(s string) string { return s }, workers: 1,
		list: func(context.Context, string) ([]string, string, error) { return nil, "", refused }}
	err := p.run(context.Background(), func(string) pageJob { t.Error("visited an item of no page"); return pageJob{} })
	if !errors.Is(err, refused) || !strings.HasPrefix(err.Error(), "list things: ") {
		t.Errorf("err = %v, want list things: refused", err)
	}
}
