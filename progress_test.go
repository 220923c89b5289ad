package main

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProgressPlainLine: piped, each line has the rows done, the share,
// the rate, the time left and the rows actually in flight.
func TestProgressPlainLine(t *testing.T) {
	t.Parallel()
	p := newProgressTo(&bytes.Buffer{}, false, "apply")
	p.total, p.inFlight = 1000, func() int { return 7 }
	p.done.Store(250)
	got := p.line(10 * time.Second)
	want := "apply: 250/1000 rows (25.0%), 25.0 rows/s, ETA 30s,   7 in flight"
	if got != want {
		t.Errorf("line:\n got %q\nwant %q", got, want)
	}
	p.total = -1
	if got, want := p.line(10*time.Second), "apply: 250 rows, 25.0 rows/s,   7 in flight"; got != want {
		t.Errorf("line without a total:\n got %q\nwant %q", got, want)
	}
	p.total, p.inFlight = 10, nil
	p.done.Store(0)
	if got, want := p.line(time.Second), "apply: 0/10 rows (0.0%), 0.0 rows/s, ETA unknown"; got != want {
		t.Errorf("line before any row:\n got %q\nwant %q", got, want)
	}
}

// TestProgressPlainLinesWritten: the lines come every few seconds while
// the run goes, through Start and Finish.
func TestProgressPlainLinesWritten(t *testing.T) {
	t.Parallel()
	out := &lockedBuffer{}
	p := newProgressTo(out, false, "export users")
	p.every = 10 * time.Millisecond
	p.Start(4, func() int { return 2 })
	p.Add(1)
	// However loaded the machine, the first tick comes.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "\n") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	p.Finish()
	line := regexp.MustCompile(`^export users: 1/4 rows \(25\.0%\), [0-9.]+ rows/s, ETA \S+,   2 in flight$`)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !line.MatchString(lines[0]) {
		t.Errorf("plain lines:\n%s", out.String())
	}
}

// lockedBuffer is a bytes.Buffer the progress goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressInFlightWidth: the figure beside the bar keeps its width as
// it changes, so the bar does not move.
func TestProgressInFlightWidth(t *testing.T) {
	t.Parallel()
	p := newProgressTo(&bytes.Buffer{}, true, "apply")
	widths := map[int]bool{}
	for _, n := range []int{1, 9, 10, 99, 100, 256} {
		p.inFlight = func() int { return n }
		widths[len(p.inFlightText())] = true
	}
	if len(widths) != 1 {
		t.Errorf("in-flight text widths %v, want one", widths)
	}
}
