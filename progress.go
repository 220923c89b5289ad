package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far a run is: a bar when stderr is a terminal, a plain
// line every few seconds when it is not (a CI log does not want redraws).
// It is what apply's pipeline.Progress and the exports report to. A nil
// *progress shows nothing.
type progress struct {
	out      io.Writer
	terminal bool
	every    time.Duration
	label    string

	done     atomic.Int64
	total    int
	bar      *progressbar.ProgressBar
	stop     chan struct{}
	wg       sync.WaitGroup
	start    time.Time
	inFlight func() int // rows being worked on now; nil when not known
}

// inFlightText is the rows in flight, padded so that the bar beside it
// keeps its place as the figure changes.
func (p *progress) inFlightText() string {
	if p.inFlight == nil {
		return ""
	}
	return fmt.Sprintf(", %3d in flight", p.inFlight())
}

// line is the plain line written every few seconds when stderr is not a
// terminal: rows done, and with a known total the share and the time left.
func (p *progress) line(elapsed time.Duration) string {
	n := p.done.Load()
	rate := float64(n) / max(elapsed.Seconds(), 0.001)
	if p.total <= 0 {
		return fmt.Sprintf("%s: %d rows, %.1f rows/s%s", p.label, n, rate, p.inFlightText())
	}
	eta := "unknown"
	if rate > 0 {
		eta = (time.Duration(float64(int64(p.total)-n)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s: %d/%d rows (%.1f%%), %.1f rows/s, ETA %s%s", p.label, n, p.total,
		100*float64(n)/float64(p.total), rate, eta, p.inFlightText())
}

// newProgressTo writes to out; terminal chooses the bar.
func newProgressTo(out io.Writer, terminal bool, label string) *progress {
	return &progress{out: out, terminal: terminal, every: 5 * time.Second, label: label}
}

// Start begins showing progress towards total rows (-1 when unknown);
// inFlight, when not nil, tells the rows being worked on now.
func (p *progress) Start(total int, inFlight func() int) {
	if p == nil {
		return
	}
	p.total, p.start, p.stop, p.inFlight = total, time.Now(), make(chan struct{}), inFlight
	if p.terminal {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription(p.label+p.inFlightText()),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fmt.Fprintln(p.out, p.line(time.Since(p.start)))
			}
		}
	}()
}

// Add counts n more rows finished.
func (p *progress) Add(n int) {
	if p == nil {
		return
	}
	p.done.Add(int64(n))
	if p.bar != nil {
		if p.inFlight != nil {
			p.bar.Describe(p.label + p.inFlightText())
		}
		_ = p.bar.Add(n) // drawing errors are not worth stopping a run for
	}
}

// Finish stops the display.
func (p *progress) Finish() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}
