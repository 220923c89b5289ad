package pipeline

import (
	"io"
	"testing"

	"github.com/synbatch/synbatch/jobs"
)

// Rows read ahead come whole in the manifest's order, and a run that stops
// early stops the reading before its reader is closed.
func TestReadAheadKeepsOrderAndStopsWithTheRun(t *testing.T) {
	src := newRig(t).manifestOf("u", 1000)
	want, err := src.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := src.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ra := newReadAhead(got)
	for n := 0; ; n++ {
		row, err := ra.next()
		wrow, werr := want.Next()
		if err != werr || row.Num != wrow.Num || (err == nil && jobs.RowKey(row, src.Parse) != jobs.RowKey(wrow, src.Parse)) {
			t.Fatalf("row %d: got %d %v, want %d %v", n, row.Num, err, wrow.Num, werr)
		}
		if err == io.EOF {
			break
		}
	}
	ra.close()

	again, err := src.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	ra = newReadAhead(again)
	if _, err := ra.next(); err != nil {
		t.Fatal(err)
	}
	ra.close() // returns although most rows were never taken
}
