package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// Config is one apply run.
type Config struct {
	Source      Source
	Checked     *Checked // from Validate, with the same Source
	Journal     string
	Header      journal.Header
	Concurrency int // rows in flight; 0 adapts it to the server, up to MaxConcurrency
	// MaxConcurrency bounds the adaptive level (0 means 32).
	MaxConcurrency int
	OnExists       jobs.OnExists
	MatchBy        string
	// InactiveDays limits delete-devices to devices not seen for that long.
	InactiveDays int
	Passwords    *jobs.PasswordFile
	MaxAttempts  int           // per row, counting the first; 0 means 9
	BaseBackoff  time.Duration // first retry wait; 0 means 500ms
	// DownAfter connection failures in a row mean the server is away (0: 5);
	// the run waits up to DownLimit for it (0: 10 minutes), then stops.
	DownAfter int
	DownLimit time.Duration
	Log       io.Writer // notes for people (stderr); may be nil
	// State is the journal as already loaded (by the caller, to reuse its
	// validation); nil loads it here.
	State *journal.State
	// AllowChanged resumes a journal written for another version of the
	// manifest or for another server; rows keep their identity by content.
	AllowChanged bool
	// ResendUncertain sends again the passwords of uncertain rows that a
	// login check cannot show are in effect.
	ResendUncertain bool
	Progress        *Progress // may be nil
	// OnRecord, when set, sees every row result as it is journaled. It is
	// called from many workers at once.
	OnRecord func(journal.Record)
	// TaskTimeout bounds how long a row polls a server task (a room
	// deletion, a history purge); 0 means 30 minutes.
	TaskTimeout time.Duration
}

// Stats counts what a run did. Resumed counts rows a previous run finished.
type Stats struct {
	Rows     int            `json:"rows"`
	Resumed  int            `json:"resumed"`
	Outcomes map[string]int `json:"outcomes"`
	NotDone  int            `json:"not_done"`
	Requests int64          `json:"requests"`
	// Concurrency is the rows in flight allowed at the end; ConcurrencyMax
	// the most at any time (they differ when Adaptive).
	Concurrency    int           `json:"concurrency"`
	ConcurrencyMax int           `json:"concurrency_max"`
	Adaptive       bool          `json:"adaptive"`
	Writes         int64         `json:"writes"`
	Elapsed        time.Duration `json:"-"`
	ElapsedS       float64       `json:"elapsed_seconds"`
	RowsPerS       float64       `json:"rows_per_second"`
	Journal        string        `json:"journal"`
	Repaired       string        `json:"repaired_tail,omitempty"`
	StoppedBy      string        `json:"stopped_by,omitempty"`
}

// Failed is how many rows ended failed or uncertain in this run.
func (s *Stats) Failed() int {
	return s.Outcomes[string(journal.Failed)] + s.Outcomes[string(journal.Uncertain)]
}

// ErrStopped wraps the reason a run stopped before every row was tried:
// an interrupt, a refused token, or a server that stopped answering.
var ErrStopped = errors.New("stopped early")

// Apply runs every row not yet finished in the journal. soft is cancelled to
// stop taking new rows (the first Ctrl-C); hard cancels requests in flight.
func Apply(soft, hard context.Context, client *synapse.Client, cfg Config) (*Stats, error) {
	start := time.Now()
	st := cfg.State
	if st == nil {
		var err error
		if st, err = journal.Load(cfg.Journal); err != nil {
			return nil, err
		}
	}
	if err := checkJournal(st, cfg); err != nil {
		return nil, err
	}
	w, err := journal.Create(cfg.Journal, cfg.Header)
	if err != nil {
		return nil, err
	}
	if w.Stale != "" && cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "synbatch: the journal's last run (%s) ended without releasing its lock; it is cleared\n", w.Stale)
	}
	stats := &Stats{Rows: cfg.Checked.Rows, Outcomes: map[string]int{}, Journal: cfg.Journal, Repaired: st.Repaired}
	var counts [5]atomic.Int64
	outcomeIdx := map[journal.Outcome]int{journal.Done: 0, journal.Unchanged: 1, journal.Skipped: 2, journal.Failed: 3, journal.Uncertain: 4}

	r, err := formats.Open(cfg.Source.Path, formats.Options{Sheet: cfg.Source.Sheet})
	if err != nil {
		w.Close()
		return nil, err
	}
	defer r.Close()

	maxAttempts := cfg.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 9
	}
	backoff := cfg.BaseBackoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	maxConc := cmp.Or(cfg.MaxConcurrency, 32)
	lim := newConcLimit(cfg.Concurrency, maxConc)
	cfg.Progress.setLevel(func() int { n, _ := lim.level(); return n })

	watch := &downWatch{client: client, threshold: int64(cmp.Or(cfg.DownAfter, 5)), limit: cmp.Or(cfg.DownLimit, 10*time.Minute), log: cfg.Log}
	g, gctx := errgroup.WithContext(hard)
	g.SetLimit(max(cfg.Concurrency, maxConc))
	record := func(rec journal.Record) error {
		// A row's result need not wait for the kernel: its begin record did.
		// An unchanged or skipped row sent nothing, so losing it costs a
		// re-plan; a failed row is tried again anyway.
		appendRec := w.AppendNoWait
		if rec.Outcome == journal.Uncertain {
			appendRec = w.Append // the one result a resume must not miss
		}
		if err := appendRec(rec); err != nil {
			return err
		}
		counts[outcomeIdx[rec.Outcome]].Add(1)
		cfg.Progress.Add(1)
		if cfg.OnRecord != nil {
			cfg.OnRecord(rec)
		}
		return nil
	}
	cfg.Progress.Start(stats.Rows)

	var readErr error
	resumed := 0
feed:
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Validate read the same file without trouble: it changed under us.
			readErr = fmt.Errorf("read %s during the run (did it change since validation?): %w", cfg.Source.Path, err)
			break
		}
		// A row the journal finished is skipped by its key, unparsed: a
		// resume over a long journal reaches its first new row quickly.
		if st.Final.Has(jobs.RowKey(row, cfg.Source.Parse)) {
			resumed++
			cfg.Progress.Add(1)
			continue
		}
		job, probs := jobs.Parse(row, cfg.Source.Parse)
		if len(probs) > 0 {
			readErr = fmt.Errorf("%w: %v (the manifest changed during the run?)", ErrInvalid, probs[0])
			break
		}
		if !cfg.Source.Mine(job) {
			continue // another shard's row
		}
		if first, dup := cfg.Checked.DupOf[row.Num]; dup {
			if err := record(journal.Record{Row: row.Num, Key: job.Key + "-dup", UserID: job.Subject(), Action: string(job.Action),
				Outcome: journal.Skipped, Note: fmt.Sprintf("same as row %d", first)}); err != nil {
				readErr = err
				break
			}
			continue
		}
		select {
		case <-soft.Done():
			break feed
		case <-gctx.Done():
			break feed
		default:
		}
		// An uncertain row of an earlier run is settled again, never taken
		// as finished: its write is treated as begun and maybe landed.
		unsure := st.Uncertain[job.Key]
		resumed := jobs.State{Begun: st.Begun[job.Key] || unsure, TaskID: st.Tasks[job.Key], Resend: unsure && cfg.ResendUncertain}
		if lim.acquire(gctx) != nil {
			break feed
		}
		g.Go(func() error {
			start := time.Now()
			attempts := 0
			err := runRow(gctx, client, cfg, w, watch, job, resumed, maxAttempts, backoff, func(rec journal.Record) error {
				attempts = rec.Attempts
				return record(rec)
			})
			lim.release(time.Since(start), attempts > 1)
			return err
		})
	}
	werr := g.Wait()
	now, reached := lim.level()
	end := journal.End{Outcomes: map[string]int{}, Concurrency: now, ConcurrencyMax: reached, Adaptive: cfg.Concurrency <= 0,
		ElapsedS: time.Since(start).Seconds()}
	for o, i := range outcomeIdx {
		if n := counts[i].Load(); n > 0 {
			end.Outcomes[string(o)] = int(n)
		}
	}
	if werr != nil {
		end.StoppedBy = werr.Error()
	}
	eerr := w.End(end)
	cerr := w.Close()
	if cerr == nil {
		cerr = eerr
	}
	cfg.Progress.Finish()

	stats.Resumed = resumed
	for o, i := range outcomeIdx {
		if n := counts[i].Load(); n > 0 {
			stats.Outcomes[string(o)] = int(n)
		}
	}
	if cerr != nil {
		// Results queued after the journal failed never reached it: count
		// only what it holds, so the summary never claims a row a resume
		// would not find finished.
		if held, herr := journal.LastRunOutcomes(cfg.Journal); herr == nil {
			stats.Outcomes = held
		} else {
			stats.Outcomes = map[string]int{}
		}
	}
	finished := resumed
	for _, n := range stats.Outcomes {
		finished += n
	}
	stats.NotDone = stats.Rows - finished
	stats.Concurrency, stats.ConcurrencyMax = lim.level()
	stats.Adaptive = cfg.Concurrency <= 0
	stats.Requests = client.Requests()
	stats.Writes = client.Writes()
	stats.Elapsed = time.Since(start)
	stats.ElapsedS = stats.Elapsed.Seconds()
	if s := stats.Elapsed.Seconds(); s > 0 {
		stats.RowsPerS = float64(finished-resumed) / s
	}
	switch {
	case werr != nil:
		stats.StoppedBy = werr.Error()
		return stats, fmt.Errorf("%w: %w", ErrStopped, werr)
	case readErr != nil:
		return stats, readErr
	case cerr != nil:
		return stats, cerr
	case soft.Err() != nil || hard.Err() != nil:
		stats.StoppedBy = "interrupted"
		return stats, fmt.Errorf("%w: interrupted", ErrStopped)
	}
	return stats, nil
}

// runRow tries one row until it settles. Only a fatal error is returned (it
// stops the group): a failing row is journaled and the pool goes on.
func runRow(ctx context.Context, c *synapse.Client, cfg Config, w *journal.Writer, watch *downWatch, job *jobs.Job, resumed jobs.State,
	maxAttempts int, backoff time.Duration, record func(journal.Record) error) error {
	start := time.Now()
	state := &resumed
	// A write an interrupted run began may have landed: a password it held
	// is not sent again (that would log the user out a second time).
	if resumed.Begun && job.SetsPassword() {
		state.PasswordUnsure = true
	}
	env := jobs.Env{Client: c, OnExists: cfg.OnExists, MatchBy: cfg.MatchBy, InactiveDays: cfg.InactiveDays,
		Passwords: cfg.Passwords, Begin: func(durable bool) error {
			rec := journal.Record{Type: "begin", Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action)}
			if durable {
				return w.AppendSync(rec)
			}
			return w.Append(rec)
		}, TaskTimeout: cfg.TaskTimeout, Task: func(id string) error {
			// Synced before polling starts: a resume must find it.
			return w.AppendSync(journal.Record{Type: "task", Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action), Task: id})
		}}
	rec := journal.Record{Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action)}
	paced := 0
	for attempt := 1; ; attempt++ {
		res, err := job.Run(ctx, env, state)
		if res.UserID != "" {
			rec.UserID = res.UserID
		}
		rec.Attempts = attempt
		rec.DurationMS = time.Since(start).Milliseconds()
		if err == nil {
			rec.Outcome, rec.Changed, rec.Note, rec.Status = res.Outcome, res.Changed, res.Note, res.Status
			return record(rec)
		}
		if ctx.Err() != nil {
			return nil // interrupted: the row stays unfinished and is redone on resume
		}
		if synapse.IsAuth(err) {
			return fmt.Errorf("the token was refused (%w): check it is a server admin's and still valid", err)
		}
		var ne *synapse.NetError
		if (errors.As(err, &ne) || synapse.IsGateway(err)) && watch.isDown() {
			// The server is away, not the row at fault: wait for it
			// without spending the row's attempts.
			if werr := watch.wait(ctx); werr != nil {
				if ctx.Err() != nil {
					return nil
				}
				return werr
			}
			attempt--
			continue
		}
		var se *synapse.Error
		if errors.As(err, &se) {
			rec.Status, rec.Errcode = se.Status, se.Errcode
		}
		// A 429 that says how long to wait is the server pacing the run,
		// not the row failing: it does not spend the row's attempts (up to
		// a bound, so a server that only ever says "wait" still ends).
		if synapse.IsPacing(err) && paced < maxPaced {
			paced++
			attempt--
			continue // the shared pause holds the request
		}
		if synapse.IsRetryable(err) && attempt < maxAttempts {
			if synapse.Backoff(ctx, backoff, attempt, err) != nil {
				return nil
			}
			continue
		}
		if errors.As(err, &ne) {
			// The server is away, not the row at fault: stop, so a resume redoes it.
			return fmt.Errorf("server unreachable after %d attempts: %w", attempt, err)
		}
		rec.Outcome, rec.Error = journal.Failed, err.Error()
		if state.PasswordUnsure {
			// A failed row is tried again by a resume: one whose password
			// may be set must not be, so it stays uncertain.
			rec.Outcome, rec.Note = journal.Uncertain, state.UnsureNote()
		}
		return record(rec)
	}
}

// maxPaced bounds the 429s with a hint one row waits out beyond its attempts.
const maxPaced = 100

// ErrJournalMismatch is a journal that belongs to another manifest or server.
var ErrJournalMismatch = errors.New("the journal belongs to another run")

// checkJournal refuses to resume a journal written for a different manifest
// or server unless told to: its finished rows would be taken as finished
// here too.
func checkJournal(st *journal.State, cfg Config) error {
	if len(st.Runs) == 0 || cfg.AllowChanged {
		return nil
	}
	last := st.Runs[len(st.Runs)-1]
	switch {
	case last.Server != "" && cfg.Header.Server != "" && last.Server != cfg.Header.Server:
		return fmt.Errorf("%w: %s was written against %s, not %s; use another --journal, or --allow-changed if this is the same server",
			ErrJournalMismatch, cfg.Journal, last.Server, cfg.Header.Server)
	case last.ManifestSHA256 != "" && last.ManifestSHA256 != cfg.Header.ManifestSHA256:
		return fmt.Errorf("%w: %s was written for another version of %s (it changed since); with --allow-changed rows keep their identity by content: finished rows are skipped, new and edited rows run",
			ErrJournalMismatch, cfg.Journal, last.Manifest)
	}
	return nil
}
