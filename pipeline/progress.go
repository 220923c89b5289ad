package pipeline

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows how far a run is: a bar when stderr is a terminal, a plain
// line every few seconds when it is not (a CI log does not want redraws).
// A nil *Progress shows nothing.
type Progress struct {
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

// setLevel lets the display show the concurrency level as it adapts.
func (p *Progress) setLevel(f func() int) {
	if p != nil {
		p.level = f
	}
}

func (p *Progress) levelText() string {
	if p.level == nil {
		return ""
	}
	return fmt.Sprintf(", %d in flight", p.level())
}

// NewProgress writes to out; terminal chooses the bar.
func NewProgress(out io.Writer, terminal bool, label string) *Progress {
	return &Progress{out: out, terminal: terminal, every: 5 * time.Second, label: label}
}

// Start begins showing progress towards total rows (-1 when unknown).
func (p *Progress) Start(total int) {
	if p == nil {
		return
	}
	p.total, p.start, p.stop = total, time.Now(), make(chan struct{})
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
func (p *Progress) Add(n int) {
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
func (p *Progress) Finish() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}
