package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/synapse"
)

// PlannedRow is one row of a plan.
type PlannedRow struct {
	Row     int                `json:"row"`
	UserID  string             `json:"user_id,omitempty"`
	Action  jobs.Action        `json:"action"`
	Kind    jobs.Kind          `json:"kind"`
	Changes []jobs.FieldChange `json:"changes,omitempty"`
	Reason  string             `json:"reason,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
	Erases  bool               `json:"erases,omitempty"`
	// What else the row takes, for the confirmation (see jobs.Plan).
	RedactRooms     int `json:"redact_rooms,omitempty"`
	MediaFiles      int `json:"media_files,omitempty"`
	MappingsRemoved int `json:"mappings_removed,omitempty"`
	// Sync marks an account the roster does not name, closed by --sync.
	Sync bool `json:"sync,omitempty"`
}

// Plan works out what apply would do to every row, sending only GET
// requests, through the same pool and rate limit as apply. emit sees the
// rows in manifest order.
func Plan(ctx context.Context, client *synapse.Client, cfg Config, emit func(PlannedRow)) (map[jobs.Kind]int, error) {
	return PlanOf(ctx, client, cfg, nil, emit)
}

// PlanOf is Plan of only the rows whose action keep accepts (nil: all).
func PlanOf(ctx context.Context, client *synapse.Client, cfg Config, keep func(jobs.Action) bool, emit func(PlannedRow)) (map[jobs.Kind]int, error) {
	r, err := cfg.Source.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	env := jobs.Env{Client: client, MAS: cfg.MAS, Rooms: &jobs.RoomChecks{}, OnExists: cfg.OnExists, MatchBy: cfg.MatchBy, InactiveDays: cfg.InactiveDays, ServerName: cfg.Source.Parse.ServerName, CheckNames: true}
	counts := map[jobs.Kind]int{}

	// Results arrive out of order; hold each until those before it are out.
	out := &inOrder{emit: func(p PlannedRow) {
		counts[p.Kind]++
		emit(p)
	}}
	deliver := out.deliver

	g, gctx := errgroup.WithContext(ctx)
	// Plan sends only reads: a fixed pool is enough (8 unless told).
	g.SetLimit(cmp.Or(cfg.Concurrency, 8))
	seq := 0
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", cfg.Source.Path, err)
		}
		job, probs := jobs.Parse(row, cfg.Source.Parse)
		if len(probs) > 0 {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, probs[0])
		}
		if !cfg.Source.Mine(job) || !cfg.Source.InRows(row.Num) || keep != nil && !keep(job.Action) {
			continue
		}
		s := seq
		seq++
		if first, dup := cfg.Checked.DupOf[row.Num]; dup {
			deliver(s, PlannedRow{Row: row.Num, UserID: job.Subject(), Action: job.Action, Kind: jobs.KindSkip, Reason: fmt.Sprintf("same as row %d", first)})
			continue
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			p, err := planWithRetry(gctx, job, env, cfg)
			if err != nil {
				return fmt.Errorf("row %d: %w", job.Row, err)
			}
			deliver(s, PlannedRow{Row: job.Row, UserID: p.UserID, Action: job.Action, Kind: p.Kind, Changes: p.Changes, Reason: p.Reason, Notes: p.Notes, Erases: p.Erases,
				RedactRooms: p.RedactRooms, MediaFiles: p.MediaFiles, MappingsRemoved: p.MappingsRemoved})
			return nil
		})
	}
	// --sync's accounts come after the rows, in user id order.
	for _, job := range cfg.Extra {
		// Whatever keep says: each closes an account, which a confirmation
		// counts.
		if gctx.Err() != nil {
			break
		}
		s := seq
		seq++
		g.Go(func() error {
			p, err := planWithRetry(gctx, job, env, cfg)
			if err != nil {
				return fmt.Errorf("--sync %s: %w", job.UserID, err)
			}
			deliver(s, PlannedRow{Row: 0, UserID: p.UserID, Action: job.Action, Kind: p.Kind, Changes: p.Changes, Reason: p.Reason, Notes: p.Notes, Erases: p.Erases, Sync: true})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return counts, err
	}
	return counts, ctx.Err()
}

// inOrder passes rows numbered 0, 1, 2… to emit in that order, whatever
// order they are delivered in, holding each until those before it are out.
// It is safe for concurrent use; emit runs under its lock.
type inOrder struct {
	emit    func(PlannedRow)
	mu      sync.Mutex
	pending map[int]PlannedRow
	next    int
}

// deliver hands over row seq, and emits it and every held row after it
// that is now next.
func (o *inOrder) deliver(seq int, pr PlannedRow) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = map[int]PlannedRow{}
	}
	o.pending[seq] = pr
	for {
		p, ok := o.pending[o.next]
		if !ok {
			return
		}
		delete(o.pending, o.next)
		o.next++
		o.emit(p)
	}
}

// planWithRetry plans one row, trying again after a 429 or a lost
// connection like apply does.
func planWithRetry(ctx context.Context, job *jobs.Job, env jobs.Env, cfg Config) (*jobs.Plan, error) {
	var p *jobs.Plan
	_, err := synapse.Retry{Attempts: max(cfg.MaxAttempts, 1), Base: cfg.BaseBackoff}.Do(ctx, func(ctx context.Context) error {
		var err error
		p, err = job.PlanRow(ctx, env)
		return err
	})
	return p, err
}
