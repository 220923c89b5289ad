package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/internal/adaptive"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/mas"
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
	// Tokens keeps generated registration tokens beside their labels
	// (--tokens-out); nil puts them in Passwords.
	Tokens *jobs.PasswordFile
	// MAS, when the server delegates its accounts to MAS, is where user rows
	// write accounts, passwords, emails and links (nil: Synapse).
	MAS         *mas.Client
	MaxAttempts int           // per row, counting the first; 0 means 9
	BaseBackoff time.Duration // first retry wait; 0 means 500ms
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
	Progress        Progress // may be nil
	// OnRecord, when set, sees every row result as it is journaled. It is
	// called from many workers at once.
	OnRecord func(journal.Record)
	// TaskTimeout bounds how long a row polls a server task (a room
	// deletion, a history purge); 0 means 30 minutes.
	TaskTimeout time.Duration
	// Extra are jobs without a row, run after the manifest's: the
	// accounts --sync closes (see SyncJobs).
	Extra []*jobs.Job
}

// Stats counts what a run did. Resumed counts rows a previous run finished.
type Stats struct {
	Rows     int            `json:"rows"`
	Resumed  int            `json:"resumed"`
	Outside  int            `json:"outside_rows,omitempty"` // rows left alone by --rows
	Outcomes map[string]int `json:"outcomes"`
	// Created and Updated split the done rows: created made what the row
	// names (the server answered 201), updated changed what was there.
	Created  int   `json:"created"`
	Updated  int   `json:"updated"`
	NotDone  int   `json:"not_done"`
	Requests int64 `json:"requests"`
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
	st, w, err := openJournal(cfg)
	if err != nil {
		return nil, err
	}
	r, err := cfg.Source.Open()
	if err != nil {
		w.Close()
		return nil, err
	}
	defer r.Close()

	ru := newRun(client, cfg, w)
	g, gctx := errgroup.WithContext(hard)
	// Workers live for the whole run: a goroutine a row would grow a new
	// stack through the client's deep calls for every row.
	rows := make(chan func(context.Context) error)
	for range max(cfg.Concurrency, ru.maxConc) {
		g.Go(func() error {
			for row := range rows {
				if err := row(gctx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	progress(cfg).Start(cfg.Checked.Rows, ru.lim.Busy)
	resumed, readErr := ru.feed(soft, gctx, rows, r, st)
	close(rows)
	werr := g.Wait()
	cerr := ru.end(werr, start)
	progress(cfg).Finish()

	stats := ru.stats(start, resumed, st.Repaired, cerr)
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

// openJournal loads the journal (unless the caller did), checks it belongs
// to this run, and opens it for this run's records.
func openJournal(cfg Config) (*journal.State, *journal.Writer, error) {
	st := cfg.State
	if st == nil {
		var err error
		if st, err = journal.Load(cfg.Journal); err != nil {
			return nil, nil, err
		}
	}
	if err := checkJournal(st, cfg); err != nil {
		return nil, nil, err
	}
	if err := checkMeaning(st, cfg.Source); err != nil {
		return nil, nil, err
	}
	cfg.Header.Parse = parseRecord(cfg.Source)
	w, err := journal.Create(cfg.Journal, cfg.Header)
	if err != nil {
		return nil, nil, err
	}
	if w.Stale != "" && cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "synbatch: the journal's last run (%s) ended without releasing its lock; it is cleared\n", w.Stale)
	}
	return st, w, nil
}

// run is what the workers of one apply run share.
type run struct {
	cfg     Config
	client  *synapse.Client
	w       *journal.Writer
	watch   *downWatch
	lim     *adaptive.Limit
	maxConc int
	outside int // rows left alone by --rows (only the feeder counts them)
	tally   tally
	created atomic.Int64     // done rows the server answered 201
	rooms   *jobs.RoomChecks // rooms found joinable, shared by the rows
}

func newRun(client *synapse.Client, cfg Config, w *journal.Writer) *run {
	maxConc := cmp.Or(cfg.MaxConcurrency, 32)
	return &run{cfg: cfg, client: client, w: w, maxConc: maxConc, lim: adaptive.New(cfg.Concurrency, maxConc), rooms: &jobs.RoomChecks{},
		watch: &downWatch{client: client, threshold: int64(cmp.Or(cfg.DownAfter, 5)), limit: cmp.Or(cfg.DownLimit, 10*time.Minute), log: cfg.Log}}
}

// tally counts the outcomes of this run's rows.
type tally [5]atomic.Int64

var outcomeOrder = [5]journal.Outcome{journal.Done, journal.Unchanged, journal.Skipped, journal.Failed, journal.Uncertain}

func (t *tally) add(o journal.Outcome) {
	if i := slices.Index(outcomeOrder[:], o); i >= 0 {
		t[i].Add(1)
	}
}

// outcomes is the count of each outcome met, by name.
func (t *tally) outcomes() map[string]int {
	m := map[string]int{}
	for i, o := range outcomeOrder {
		if n := t[i].Load(); n > 0 {
			m[string(o)] = int(n)
		}
	}
	return m
}

// record journals one row's result and counts it.
func (ru *run) record(rec journal.Record) error {
	// A row's result need not wait for the kernel: its begin record did.
	// An unchanged or skipped row sent nothing, so losing it costs a
	// re-plan; a failed row is tried again anyway.
	appendRec := ru.w.AppendNoWait
	if rec.Outcome == journal.Uncertain {
		appendRec = ru.w.Append // the one result a resume must not miss
	}
	if err := appendRec(rec); err != nil {
		return err
	}
	ru.tally.add(rec.Outcome)
	if rec.Outcome == journal.Done && rec.Status == http.StatusCreated {
		ru.created.Add(1)
	}
	progress(ru.cfg).Add(1)
	if ru.cfg.OnRecord != nil {
		ru.cfg.OnRecord(rec)
	}
	return nil
}

// feed reads the manifest and hands each row to the pool until it ends,
// soft stops it, or the group fails. It returns the rows an earlier run
// finished, and why reading stopped early.
func (ru *run) feed(soft, gctx context.Context, rows chan<- func(context.Context) error, r formats.Reader, st *journal.State) (resumed int, _ error) {
	cfg := ru.cfg
	legacy := legacyKeys(st)
	ra := newReadAhead(r)
	defer ra.close()
	for {
		row, err := ra.next()
		if err == io.EOF {
			return ru.feedExtra(soft, gctx, rows, st, resumed)
		}
		if err != nil {
			// Validate read the same file without trouble: it changed under us.
			return resumed, fmt.Errorf("read %s during the run (did it change since validation?): %w", cfg.Source.Path, err)
		}
		// A row the journal finished is skipped by its key, unparsed: a
		// resume over a long journal reaches its first new row quickly.
		// A journal from before keys took only the row's own options holds
		// the legacy key (with this run's options, as those runs used).
		legacyKey := ""
		if legacy {
			legacyKey = jobs.LegacyRowKey(row, cfg.Source.Parse)
		}
		if st.Final.Has(jobs.RowKey(row, cfg.Source.Parse)) || legacy && st.Final.Has(legacyKey) {
			resumed++
			progress(cfg).Add(1)
			continue
		}
		job, probs := jobs.Parse(row, cfg.Source.Parse)
		if len(probs) > 0 {
			return resumed, fmt.Errorf("%w: %v (the manifest changed during the run?)", ErrInvalid, probs[0])
		}
		if !cfg.Source.Mine(job) {
			continue // another shard's row
		}
		if !cfg.Source.InRows(row.Num) {
			// Not journaled at all: a later run without --rows does it.
			ru.outside++
			continue
		}
		if first, dup := cfg.Checked.DupOf[row.Num]; dup {
			if err := ru.record(journal.Record{Row: row.Num, Key: job.Key + "-dup", UserID: job.Subject(), Action: string(job.Action),
				Outcome: journal.Skipped, Note: fmt.Sprintf("same as row %d", first)}); err != nil {
				return resumed, err
			}
			continue
		}
		if !ru.dispatch(soft, gctx, rows, job, st, legacyKey) {
			return resumed, nil
		}
	}
}

// feedExtra hands the jobs without a row (--sync's) to the pool after the
// manifest's rows; one a journal finished is skipped by its key.
func (ru *run) feedExtra(soft, gctx context.Context, rows chan<- func(context.Context) error, st *journal.State, resumed int) (int, error) {
	for _, job := range ru.cfg.Extra {
		if st.Final.Has(job.Key) {
			resumed++
			progress(ru.cfg).Add(1)
			continue
		}
		if !ru.dispatch(soft, gctx, rows, job, st, "") {
			break
		}
	}
	return resumed, nil
}

// dispatch hands one job to the pool; false when the run stops.
// legacyKey, when not empty, is the row's key as a journal from before keys
// took only the row's own options wrote it.
func (ru *run) dispatch(soft, gctx context.Context, rows chan<- func(context.Context) error, job *jobs.Job, st *journal.State, legacyKey string) bool {
	cfg := ru.cfg
	if soft.Err() != nil || gctx.Err() != nil {
		return false
	}
	// An uncertain row of an earlier run is settled again, never taken
	// as finished: its write is treated as begun and maybe landed.
	legacy := legacyKey != ""
	unsure := st.Uncertain[job.Key] || legacy && st.Uncertain[legacyKey]
	state := jobs.State{Begun: st.Begun[job.Key] || legacy && st.Begun[legacyKey] || unsure,
		TaskID: cmp.Or(st.Tasks[job.Key], st.Tasks[legacyKey]), Resend: unsure && cfg.ResendUncertain}
	if ru.lim.Acquire(gctx) != nil {
		return false
	}
	work := func(gctx context.Context) error {
		// Every request derives a context or two from the row's (its
		// timeout, the transport's cancel); derived from the run's own,
		// each would register under that one lock that all workers share.
		ctx, cancel := context.WithCancel(gctx)
		defer cancel()
		start := time.Now()
		attempts, polled, err := ru.row(ctx, job, state)
		// A row polling a server task (a room deletion) waits on the
		// task, not on the server's answers: only the rest of its time
		// tells the level whether requests are queueing.
		ru.lim.Release(time.Since(start)-polled, attempts > 1)
		return err
	}
	select {
	case rows <- work:
	case <-gctx.Done(): // the run stops: the row stays for a resume
		ru.lim.Release(0, false)
		return false
	}
	return true
}

// end writes the journal's end record and closes it.
func (ru *run) end(werr error, start time.Time) error {
	now, reached := ru.lim.Level()
	end := journal.End{Outcomes: ru.tally.outcomes(), Concurrency: now, ConcurrencyMax: reached, Adaptive: ru.cfg.Concurrency <= 0,
		ElapsedS: time.Since(start).Seconds()}
	if werr != nil {
		end.StoppedBy = werr.Error()
	}
	eerr := ru.w.End(end)
	cerr := ru.w.Close()
	if cerr == nil {
		cerr = eerr
	}
	return cerr
}

// stats sums the run up. cerr is the journal's closing error: results
// queued after the journal failed never reached it, so only what it holds
// is counted, and the summary never claims a row a resume would not find
// finished.
func (ru *run) stats(start time.Time, resumed int, repaired string, cerr error) *Stats {
	cfg := ru.cfg
	stats := &Stats{Rows: cfg.Checked.Rows + len(cfg.Extra), Resumed: resumed, Outcomes: ru.tally.outcomes(), Journal: cfg.Journal, Repaired: repaired}
	if cerr != nil {
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
	done := stats.Outcomes[string(journal.Done)]
	// A journal that failed holds fewer rows than were counted.
	stats.Created = min(int(ru.created.Load()), done)
	stats.Updated = done - stats.Created
	stats.Outside = ru.outside
	stats.NotDone = stats.Rows - finished - ru.outside
	stats.Concurrency, stats.ConcurrencyMax = ru.lim.Level()
	stats.Adaptive = cfg.Concurrency <= 0
	stats.Requests = ru.client.Requests()
	stats.Writes = ru.client.Writes()
	stats.Elapsed = time.Since(start)
	stats.ElapsedS = stats.Elapsed.Seconds()
	if s := stats.Elapsed.Seconds(); s > 0 {
		stats.RowsPerS = float64(finished-resumed) / s
	}
	return stats
}

// row tries one row until it settles, and journals it. Only a fatal error
// is returned (it stops the group): a failing row is journaled and the
// pool goes on. attempts counts the tries that spent the row's budget;
// polled is the time it spent polling server tasks.
func (ru *run) row(ctx context.Context, job *jobs.Job, resumed jobs.State) (attempts int, polled time.Duration, _ error) {
	attempts, err := ru.runRow(ctx, job, resumed, &polled)
	return attempts, polled, err
}

func (ru *run) runRow(ctx context.Context, job *jobs.Job, resumed jobs.State, polled *time.Duration) (attempts int, _ error) {
	start := time.Now()
	state := &resumed
	// A write an interrupted run began may have landed: a password it held
	// is not sent again (that would log the user out a second time). MAS's
	// set-password ends no session, so there it is simply sent again.
	if resumed.Begun && job.SetsPassword() && ru.cfg.MAS == nil {
		state.PasswordUnsure = true
	}
	env := ru.env(job)
	env.Polled = func(d time.Duration) { *polled += d } // the row's own goroutine
	rec := journal.Record{Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action)}
	var res jobs.Result
	retry := synapse.Retry{Attempts: cmp.Or(ru.cfg.MaxAttempts, 9), Base: ru.cfg.BaseBackoff, Paced: maxPaced, Hold: ru.watch.hold}
	attempts, err := retry.Do(ctx, func(ctx context.Context) error {
		var err error
		res, err = job.Run(ctx, env, state)
		if res.UserID != "" {
			rec.UserID = res.UserID
		}
		return err
	})
	rec.Attempts = attempts
	rec.DurationMS = time.Since(start).Milliseconds()
	switch {
	case err == nil:
		rec.Outcome, rec.Changed, rec.Note, rec.Status = res.Outcome, res.Changed, res.Note, res.Status
		return attempts, ru.record(rec)
	case ctx.Err() != nil:
		return attempts, nil // interrupted: the row stays unfinished and is redone on resume
	case synapse.IsAuth(err):
		return attempts, fmt.Errorf("the token was refused (%w): check it is a server admin's and still valid", err)
	case synapse.IsNet(err):
		// The server is away, not the row at fault: stop, so a resume redoes it.
		return attempts, fmt.Errorf("server unreachable after %d attempts: %w", attempts, err)
	case errors.Is(err, errServerAway):
		return attempts, err
	}
	var se *synapse.Error
	if errors.As(err, &se) {
		rec.Status, rec.Errcode = se.Status, se.Errcode
	}
	rec.Outcome, rec.Error = journal.Failed, err.Error()
	// A generated password that never took effect (see NotInEffect) is
	// marked so in the passwords file, and the run names it.
	if name := state.NotInEffect(); name != "" && ru.cfg.Passwords != nil {
		if err := ru.cfg.Passwords.NotSet(name); err != nil {
			return attempts, err
		}
		rec.Note = "its generated password never took effect: marked so in --passwords-out"
	}
	if state.PasswordUnsure {
		// A failed row is tried again by a resume: one whose password
		// may be set must not be, so it stays uncertain.
		rec.Outcome, rec.Note = journal.Uncertain, state.UnsureNote()
	}
	return attempts, ru.record(rec)
}

// env is what a row's job needs from the run: the client, the options, and
// the journal for its begin and task records.
func (ru *run) env(job *jobs.Job) jobs.Env {
	cfg, w := ru.cfg, ru.w
	return jobs.Env{Client: ru.client, MAS: cfg.MAS, Rooms: ru.rooms, OnExists: cfg.OnExists, MatchBy: cfg.MatchBy, InactiveDays: cfg.InactiveDays, ServerName: cfg.Source.Parse.ServerName,
		Passwords: cfg.Passwords, Tokens: cfg.Tokens, Begin: func(durable bool) error {
			rec := journal.Record{Type: "begin", Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action)}
			if durable {
				return w.AppendSync(rec)
			}
			return w.Append(rec)
		}, TaskTimeout: cfg.TaskTimeout, Task: func(id string) error {
			// Synced before polling starts: a resume must find it.
			return w.AppendSync(journal.Record{Type: "task", Row: job.Row, Key: job.Key, UserID: job.Subject(), Action: string(job.Action), Task: id})
		}}
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
	case last.Server != "" && cfg.Header.Server != "" && journal.NormalServer(last.Server) != journal.NormalServer(cfg.Header.Server):
		return fmt.Errorf("%w: %s was written against %s, not %s; use another --journal, or --allow-changed if this is the same server",
			ErrJournalMismatch, cfg.Journal, last.Server, cfg.Header.Server)
	case last.ManifestSHA256 != "" && last.ManifestSHA256 != cfg.Header.ManifestSHA256:
		return fmt.Errorf("%w: %s was written for another version of %s (it changed since); with --allow-changed rows keep their identity by content: finished rows are skipped, new and edited rows run",
			ErrJournalMismatch, cfg.Journal, last.Manifest)
	}
	return nil
}
