package pipeline

import (
	"slices"
	"sync"
	"testing"
)

func TestInOrderEmitsRowsInSequenceWhateverOrderTheyArrive(t *testing.T) {
	t.Parallel()
	var got []int
	o := &inOrder{emit: func(p PlannedRow) { got = append(got, p.Row) }}
	for _, seq := range []int{2, 0, 3, 1, 5} {
		o.deliver(seq, PlannedRow{Row: seq})
	}
	// 4 never came: 5 is held, not emitted out of order.
	if want := []int{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}

	// Concurrent deliveries: all out, in order.
	got = nil
	o = &inOrder{emit: func(p PlannedRow) { got = append(got, p.Row) }}
	var wg sync.WaitGroup
	for seq := range 200 {
		wg.Go(func() { o.deliver(seq, PlannedRow{Row: seq}) })
	}
	wg.Wait()
	if len(got) != 200 || !slices.IsSorted(got) {
		t.Fatalf("emitted %d rows, sorted %v", len(got), slices.IsSorted(got))
	}
}
