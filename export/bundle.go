// Package export writes what synbatch exports from a homeserver to disk.
//
// Bundles writes one folder per user under an output directory, holding
// everything the Admin API knows about the account (profile, devices,
// connections, rooms, account data, media list, pushers, rate limit) and,
// on request, the user's media files:
//
//	index.csv              user_id,folder for every user this or an earlier run was given
//	<folder>/user.json     … one JSON document per API, as the server sent it
//	<folder>/media/<id>.<ext> the user's uploads (with BundleConfig.Media), the extension from the upload's name or type
//	<folder>/index.html    the same for the person: a page with no script that links the files
//	<folder>/manifest.json size and sha256 of every file above, written last
//	<folder>.zip           with BundleConfig.Archive: the folder packed (the folder is removed)
//
// Every file is written to a temporary file in its directory, synced, and
// renamed; manifest.json is renamed into place only after every other file's
// directory entry is on disk. So a bundle is complete exactly when its
// manifest.json exists and the files match it: a later run skips it, and
// redoes from scratch any folder without a valid manifest.
package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// BundleConfig is one export of user bundles.
type BundleConfig struct {
	Out            string   // output directory (created 0700 if missing)
	Users          []string // full user ids, already resolved; repeats are exported once
	Concurrency    int      // requests in flight; 0 adapts (inFlight) up to MaxConcurrency
	MaxConcurrency int
	Media          bool // also download the user's own media files
	// Events, when EventsSent or EventsAll, adds a JSONL file of events per
	// room the user has a membership in (see bundler.events).
	Events string
	// ScanRooms also finds, for Events, the rooms every local member has
	// left, which the memberships endpoint cannot list (see scanDeparted).
	ScanRooms bool
	// Archive packs each finished folder into <folder>.zip and then removes
	// the folder, so a bundle exists once on disk (media can be large).
	Archive bool
	// MAS, when set, is the MAS that holds the users' accounts: each bundle
	// also gets what MAS holds about its user (see bundler.masDocs).
	MAS *mas.Client
	// Progress, when set, is told how many users have finished (exported,
	// skipped or failed). It is called from the workers, one call at a time.
	Progress func(done int)
	// Stop, when closed, starts no further bundle: those in flight are
	// finished (a later run skips them), the rest stay ErrNotRun and
	// Bundles returns ErrStopped. Cancelling ctx instead ends them at once.
	Stop <-chan struct{}

	Tool           string        // written into manifest.json, e.g. "synbatch 1.4.0"; "synbatch" when empty
	MediaPageSize  int           // media list page size; <= 0 means 100
	EventsPageSize int           // events per messages request (Synapse allows 1000); <= 0 means 500
	MaxAttempts    int           // per request, counting the first; <= 0 means 4
	BaseBackoff    time.Duration // first retry wait (doubled each time, with jitter); <= 0 means 500ms
}

// BundleResult is what became of one user.
type BundleResult struct {
	UserID string
	// Folder is the bundle's folder name inside Out (never a path: it has no
	// separator). With Archive the bundle is Folder+".zip" instead.
	Folder string
	// Path is where the bundle is: Out/Folder, or Out/Folder.zip. Both are
	// empty for an id that is not a user id.
	Path string
	// Skipped is set when an earlier run had finished the bundle, so no
	// request was made for this user (an earlier folder may just have been packed).
	Skipped bool
	// Err is this user's failure; the run went on with the others. A user the
	// run never finished (it stopped first) has an Err that wraps ErrNotRun.
	Err   error
	Files int   // files in the bundle, manifest.json included
	Bytes int64 // their total size (uncompressed)
	// Notes say what the bundle lacks without failing the user: media that
	// was quarantined or gone, rooms without details.
	Notes []string
}

// ErrNotRun marks users a stopped run did not finish. Their folders, if
// any, have no manifest and are redone by the next run.
var ErrNotRun = errors.New("not exported: the run stopped first")

// ErrStopped is what Bundles returns when cfg.Stop ended the run before
// every user was exported.
var ErrStopped = errors.New("export stopped before every user was exported")

// Bundles exports each user in cfg.Users into a bundle under cfg.Out, several
// users at once. One user's failure is recorded in its result and the others
// go on. The error is only for what would fail every user: the context ended,
// the token was refused (synapse.IsAuth), the server stopped answering, or
// the output directory cannot be written. Results are returned even then,
// one per distinct user id in the order given.
func Bundles(ctx context.Context, c *synapse.Client, cfg BundleConfig) ([]BundleResult, error) {
	if cfg.Out == "" {
		return nil, errors.New("export: no output directory")
	}
	if cfg.Events != "" && cfg.Events != EventsSent && cfg.Events != EventsAll {
		return nil, fmt.Errorf("export: events %q, want %q or %q", cfg.Events, EventsSent, EventsAll)
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", cfg.Out, err)
	}
	if err := nofollow.MkdirAll(out, 0o700); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	users := distinctIDs(cfg.Users)
	valid, folderOf, err := assignFolders(out, users)
	if err != nil {
		return nil, err
	}
	b := newBundler(c, cfg, out)
	if cfg.Events != "" && cfg.ScanRooms {
		// The scan exports nothing of its own: Stop ends it at once.
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-cfg.Stop:
				cancel()
			case <-sctx.Done():
			}
		}()
		b.departed, err = b.scanDeparted(sctx, valid)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("scan rooms: %w", err)
		}
	}
	results := b.notRunResults(users, folderOf)
	return results, b.all(ctx, users, folderOf, results)
}

// assignFolders gives every well-formed user id among users a folder in
// out's index (an earlier run's, or a new one), and writes the index. It
// returns those ids, in order, and their folders.
func assignFolders(out string, users []string) ([]string, map[string]string, error) {
	idx, err := loadBundleIndex(out)
	if err != nil {
		return nil, nil, err
	}
	// Only well-formed ids get a folder (and a line in the index).
	var valid []string
	for _, u := range users {
		if _, ok := userServer(u); ok {
			valid = append(valid, u)
		}
	}
	assigned, err := idx.assign(valid)
	if err != nil {
		return nil, nil, err
	}
	folderOf := make(map[string]string, len(valid))
	for i, u := range valid {
		folderOf[u] = assigned[i]
	}
	// The index is written before any bundle, so that every folder a run
	// can leave behind, even a killed one, is named in it.
	if err := idx.write(out); err != nil {
		return nil, nil, fmt.Errorf("output directory: %w", err)
	}
	return valid, folderOf, nil
}

// newBundler is the bundler of one export into out, with cfg's defaults
// filled in.
func newBundler(c *synapse.Client, cfg BundleConfig, out string) *bundler {
	b := &bundler{c: c, cfg: cfg, out: out, tool: cfg.Tool}
	if b.tool == "" {
		b.tool = "synbatch"
	}
	b.pageSize = cfg.MediaPageSize
	if b.pageSize <= 0 {
		b.pageSize = 100
	}
	b.eventsPage = cfg.EventsPageSize
	if b.eventsPage <= 0 {
		b.eventsPage = 500
	}
	b.attempts = cfg.MaxAttempts
	if b.attempts <= 0 {
		b.attempts = 4
	}
	b.backoff = cfg.BaseBackoff
	if b.backoff <= 0 {
		b.backoff = 500 * time.Millisecond
	}
	return b
}

// notRunResults is a result per user before any is exported: not run
// (ErrNotRun), or failed for an id that is not a user id (no folder).
func (b *bundler) notRunResults(users []string, folderOf map[string]string) []BundleResult {
	results := make([]BundleResult, len(users))
	for i, u := range users {
		if f, ok := folderOf[u]; ok {
			results[i] = BundleResult{UserID: u, Folder: f, Path: b.bundlePath(f), Err: ErrNotRun}
		} else {
			results[i] = BundleResult{UserID: u, Err: fmt.Errorf("%q: not a full user id (@localpart:server_name)", u)}
		}
	}
	return results
}

// all exports the users that have a folder, several at once, into their
// places in results. It returns only a fatal error (see Bundles).
func (b *bundler) all(ctx context.Context, users []string, folderOf map[string]string, results []BundleResult) error {
	finished := doneCounter(b.cfg.Progress)
	var workers int
	b.c, workers = inFlight(b.c, b.cfg.Concurrency, b.cfg.MaxConcurrency)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i, u := range users {
		if gctx.Err() != nil || b.stopped() {
			break
		}
		folder, ok := folderOf[u]
		if !ok {
			finished()
			continue
		}
		g.Go(func() error {
			// g.Go waited for a free slot: the stop may have come meanwhile.
			if b.stopped() {
				return nil
			}
			res, fatal := b.user(gctx, u, folder)
			results[i] = res
			if fatal == nil && !errors.Is(res.Err, ErrNotRun) {
				finished()
			}
			return fatal
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export stopped: %w", err)
	}
	// A stop that came while the last bundles finished stopped nothing.
	if b.stopped() && slices.ContainsFunc(results, func(r BundleResult) bool { return errors.Is(r.Err, ErrNotRun) }) {
		return ErrStopped
	}
	return nil
}

// stopped reports whether cfg.Stop is closed.
func (b *bundler) stopped() bool {
	select {
	case <-b.cfg.Stop:
		return true
	default:
		return false
	}
}

// doneCounter returns what a worker calls when a user is finished: it
// tells progress (if set) how many are, one call at a time.
func doneCounter(progress func(done int)) func() {
	var mu sync.Mutex
	done := 0
	return func() {
		if progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done++
		progress(done)
	}
}

// distinctIDs drops repeated ids: two workers in one folder would ruin it.
func distinctIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// bundler exports users; one is shared by all workers and never changes.
type bundler struct {
	c        *synapse.Client
	cfg      BundleConfig
	out      string
	tool     string
	pageSize int
	// eventsPage is how many events one messages request asks for.
	eventsPage int
	// departed is what the room scan found: user -> room -> membership.
	departed map[string]map[string]departed
	attempts int
	backoff  time.Duration
}

func (b *bundler) bundlePath(folder string) string {
	p := filepath.Join(b.out, folder)
	if b.cfg.Archive {
		p += ".zip"
	}
	return p
}

// user exports one user. It returns a fatal error only for what stops the
// whole run; anything else is in the result.
func (b *bundler) user(ctx context.Context, id, folder string) (BundleResult, error) {
	res := BundleResult{UserID: id, Folder: folder, Path: b.bundlePath(folder)}
	server, _ := userServer(id) // checked by Bundles
	dir := filepath.Join(b.out, folder)

	done, err := b.finishedEarlier(id, folder, &res)
	if err != nil {
		return b.fail(ctx, &res, dir, err)
	}
	if done {
		return res, nil
	}
	m, err := b.export(ctx, id, server, dir, &res)
	if err != nil {
		return b.fail(ctx, &res, dir, err)
	}
	res.Files, res.Bytes = m.totals()
	if b.cfg.Archive {
		if err := b.pack(folder, m); err != nil {
			return b.fail(ctx, &res, dir, err)
		}
	}
	return res, nil
}

// finishedEarlier reports whether an earlier run left a complete bundle for
// id (packing it when Archive asks for a zip), and otherwise clears what that
// run left so the export starts from nothing.
func (b *bundler) finishedEarlier(id, folder string, res *BundleResult) (bool, error) {
	dir := filepath.Join(b.out, folder)
	zipPath := dir + ".zip"
	enough := func(m *Manifest) bool {
		return (m.Media || !b.cfg.Media) && (b.cfg.Events == "" || m.Events == b.cfg.Events)
	}

	// A link planted at either name is refused before either is read: a
	// zip or folder elsewhere must not pass for this user's bundle.
	for _, p := range []string{dir, zipPath} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return false, diskErr(&nofollow.LinkError{Op: "use", Path: p})
		}
	}
	m, err := checkZip(zipPath, folder, id, false)
	switch {
	case err == nil && enough(m):
		res.Skipped, res.Path = true, zipPath
		res.Files, res.Bytes = m.totals()
		return true, nil
	case errors.Is(err, errOtherUser):
		return false, err
	}
	m, err = checkFolder(dir, id, false)
	switch {
	case err == nil && !enough(m) && m.Events != "" && m.Events == b.cfg.Events:
		if err := keepRoomFiles(dir, m); err != nil {
			return false, diskErr(fmt.Errorf("keep the room files of %s: %w", dir, err))
		}
	case err == nil && enough(m):
		res.Skipped, res.Path = true, dir
		res.Files, res.Bytes = m.totals()
		if b.cfg.Archive {
			if err := b.pack(folder, m); err != nil {
				return false, err
			}
			res.Path = zipPath
			res.Notes = append(res.Notes, "packed the folder an earlier run had finished")
		}
		return true, nil
	case errors.Is(err, errOtherUser):
		return false, err
	}

	// Half-written, from a run without media when media is wanted now, or
	// nothing at all: start over.
	leftovers, _ := filepath.Glob(filepath.Join(b.out, "."+folder+".zip.tmp-*"))
	for _, p := range append(leftovers, zipPath) {
		if err := nofollow.Remove(p); err != nil {
			return false, diskErr(fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if err := b.clearUnfinished(dir); err != nil {
		return false, diskErr(fmt.Errorf("remove unfinished bundle %s: %w", dir, err))
	}
	return false, nil
}

// fail sorts err into a user's failure or a fatal error. A failed user's
// folder is removed, so that nothing half-written looks like an export.
func (b *bundler) fail(ctx context.Context, res *BundleResult, dir string, err error) (BundleResult, error) {
	if ctx.Err() != nil {
		// Stopped by the caller or by another worker's fatal error; the
		// folder has no manifest and the next run redoes it.
		res.Err = fmt.Errorf("%s: %w (%w)", res.UserID, ErrNotRun, ctx.Err())
		return *res, nil
	}
	res.Err = fmt.Errorf("%s: %w", res.UserID, err)
	var ne *synapse.NetError
	switch {
	case synapse.IsAuth(err):
		return *res, fmt.Errorf("the token was refused (%w): check it is a server admin's and still valid", err)
	case isDiskErr(err):
		return *res, fmt.Errorf("write the bundle of %s: %w", res.UserID, err)
	case errors.As(err, &ne):
		// The server is away, not this user at fault: every other user would
		// fail the same way, after the same retries.
		return *res, fmt.Errorf("server unreachable (%s): %w", res.UserID, err)
	}
	if !errors.Is(err, errOtherUser) {
		_ = b.clearUnfinished(dir)
	}
	return *res, nil
}

// retry runs fn until it succeeds, fails for good, or attempts run out. A
// file that changed while it was read (errMismatch) is read again too.
func (b *bundler) retry(ctx context.Context, fn func() error) error {
	r := synapse.Retry{Attempts: b.attempts, Base: b.backoff, Retryable: func(err error) bool {
		return synapse.IsRetryable(err) || errors.Is(err, errMismatch)
	}}
	n, err := r.Do(ctx, func(context.Context) error { return fn() })
	if err != nil && n > 1 && ctx.Err() == nil {
		return fmt.Errorf("after %d attempts: %w", n, err)
	}
	return err
}

// retried is retry for a request that returns a value.
func retried[T any](ctx context.Context, b *bundler, get func() (T, error)) (T, error) {
	var v T
	err := b.retry(ctx, func() error {
		var err error
		v, err = get()
		return err
	})
	return v, err
}

// userServer is the part of a user id after the localpart: the server whose
// media repository holds the user's uploads.
func userServer(id string) (string, bool) {
	local, server, ok := strings.Cut(strings.TrimPrefix(id, "@"), ":")
	if !strings.HasPrefix(id, "@") || !ok || local == "" || server == "" {
		return "", false
	}
	return server, true
}
