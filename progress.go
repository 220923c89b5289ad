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

	done  atomic.Int64
	total int
	bar   *progressbar.ProgressBar
	stop  chan struct{}
	wg    sync.WaitGroup
	start time.Time
	level func() int // rows in flight allowed now; nil when not known
}

func (p *progress) levelText() string {
	if p.level == nil {
		return ""
	}
	return fmt.Sprintf(", %d in flight", p.level())
}

// newProgressTo writes to out; terminal chooses the bar.
func newProgressTo(out io.Writer, terminal bool, label string) *progress {
	return &progress{out: out, terminal: terminal, every: 5 * time.Second, label: label}
}

// Start begins showing progress towards total rows (-1 when unknown);
// level, when not nil, tells the rows in flight allowed now.
func (p *progress) Start(total int, level func() int) {
	if p == nil {
		return
	}
	p.total, p.start, p.stop, p.level = total, time.Now(), make(chan struct{}), level
	if p.terminal {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription(p.label),
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
				n := p.done.Load()
				el := time.Since(p.start).Seconds()
				if p.total > 0 {
					fmt.Fprintf(p.out, "%s: %d/%d rows, %.1f rows/s%s\n", p.label, n, p.total, float64(n)/el, p.levelText())
				} else {
					fmt.Fprintf(p.out, "%s: %d rows, %.1f rows/s%s\n", p.label, n, float64(n)/el, p.levelText())
				}
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
		if p.level != nil {
			p.bar.Describe(p.label + p.levelText())
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
