package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
	"github.com/synbatch/synbatch/synapse"
)

// Defaults. apply adapts the rows in flight to the server, and the exports
// the requests in flight (up to defaultMaxConcurrency), and set no rate:
// the server's latency says when it is busy, and --rate caps requests when
// an admin wants a ceiling.
const (
	defaultMaxConcurrency = 32
	defaultRate           = 0
)

// runFlags are the flags of every command that runs rows against a server.
func runFlags() []cli.Flag {
	flags := append(manifestFlags(), connFlags()...)
	return append(flags, outputFlag(),
		&cli.IntFlag{Name: "concurrency", Aliases: []string{"j"}, Usage: "`N` rows in flight, fixed; 0 (the default) adapts to the server's latency"},
		&cli.IntFlag{Name: "max-concurrency", Value: defaultMaxConcurrency, Usage: "at most `N` rows in flight for the adaptive level"},
		&cli.Float64Flag{Name: "rate", Value: defaultRate, Usage: "at most `PER_SECOND` requests a second, over all workers; 0 (the default) sets no cap"},
		&cli.IntFlag{Name: "retries", Value: 8, Usage: "retry a row up to `N` times after a 5xx, a lost connection or a 429 without a wait hint (a 429 that says how long to wait is waited out without spending a retry)"},
		&cli.StringFlag{Name: "on-exists", Value: "skip", Usage: "what a create row does when the user exists: `skip|update|fail`"},
		&cli.IntFlag{Name: "inactive-days", Usage: "delete-devices: only devices not seen for `DAYS` days"},
		&cli.DurationFlag{Name: "task-timeout", Value: 30 * time.Minute, Usage: "delete-room, purge-history: how long (`DURATION`) a row polls its server task before it fails (a run again polls the same task)"},
		&cli.StringFlag{Name: "shard", Usage: "`K/N`: run only the rows whose user id hashes to shard K of N (0-based; stable across runs and formats)", EnvVars: []string{"SYNBATCH_SHARD"}},
		&cli.StringFlag{Name: "rows", Usage: "`FIRST-LAST`: apply (or plan) only those rows, numbered as the spreadsheet shows them (header = row 1), for a trial run; every row is still validated"},
		&cli.IntFlag{Name: "shards", Usage: "`N` shards, K taken from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)", EnvVars: []string{"SYNBATCH_SHARDS"}},
		&cli.StringFlag{Name: "sync", Usage: "close the accounts in --sync-scope that no row names, by `deactivate|lock|suspend` (never the admin running it, an application service's users or a remote user)"},
		&cli.StringFlag{Name: "sync-scope", Usage: "with --sync: the user ids it may close, a `REGEX` matched against the whole user id (e.g. '@.*:example.org')"},
		&cli.IntFlag{Name: "sync-max", Value: 10, Usage: "with --sync: refuse (exit 2, nothing sent) when more than `N` accounts would be closed"},
		&cli.BoolFlag{Name: "allow-unknown-provider", Usage: "go on when --auth-provider, --match-by external_id:PROVIDER or a row's external ids name an identity provider the server's login flows do not list (one about to be configured); without it such a run sends nothing (exit 2)"},
	)
}

// shardOf reads --shard K/N, or --shards N with K from JOB_COMPLETION_INDEX.
func shardOf(c *cli.Context) (k, n int, err error) {
	if v := c.String("shard"); v != "" {
		if _, err := fmt.Sscanf(v, "%d/%d", &k, &n); err != nil || n < 1 || k < 0 || k >= n {
			return 0, 0, usageErr("--shard %q: want K/N with 0 <= K < N", v)
		}
		return k, n, nil
	}
	n = c.Int("shards")
	if n <= 1 {
		return 0, 1, nil
	}
	idx, ok := os.LookupEnv("JOB_COMPLETION_INDEX")
	if _, err := fmt.Sscanf(idx, "%d", &k); !ok || err != nil || k < 0 || k >= n {
		return 0, 0, usageErr("--shards %d needs JOB_COMPLETION_INDEX between 0 and %d (got %q), or give --shard K/N", n, n-1, idx)
	}
	return k, n, nil
}

func applyCommand(soft, hard context.Context, stdin io.Reader, stdout, stderr io.Writer) *cli.Command {
	flags := append(runFlags(),
		&cli.StringFlag{Name: "journal", Usage: "result journal at `PATH` (default MANIFEST.journal.jsonl); the same journal resumes the run"},
		&cli.StringFlag{Name: "passwords-out", Usage: "`FILE` for generated passwords and registration tokens (created 0600; the only place they are written)"},
		&cli.StringFlag{Name: "tokens-out", Usage: "`FILE` for generated registration tokens, one per line beside the row's label (label,token; created 0600; the only place they are written)"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "go on without asking when rows deactivate, delete devices, reset passwords, remove external ids, delete rooms, purge history, or delete or quarantine media"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing (the same as synbatch plan)"},
		&cli.BoolFlag{Name: "list", Aliases: []string{"l"}, Usage: "print a line for each row as it finishes"},
		&cli.BoolFlag{Name: "resend-uncertain", Usage: "send again the passwords of uncertain rows (a lost answer that a login check could not settle); each such write logs the user out"},
		&cli.BoolFlag{Name: "allow-changed", Usage: "resume a journal although the manifest changed since (rows are matched by content) or it names another server URL"},
		&cli.DurationFlag{Name: "down-limit", Value: 10 * time.Minute, Usage: "how long (`DURATION`) to wait for a server that stopped answering before stopping (exit 3)"},
	)
	return &cli.Command{
		Name:      "apply",
		Usage:     "make every row of a manifest true on the server, resumably",
		ArgsUsage: "MANIFEST",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if c.Bool("dry-run") {
				o, err := runOptionsFrom(c, stderr)
				if err != nil {
					return err
				}
				return runPlan(soft, o, stdout, stderr) // plan's own: the first signal ends it
			}
			o, err := applyOptionsFrom(c, stderr)
			if err != nil {
				return err
			}
			return runApply(soft, hard, o, stdin, stdout, stderr)
		},
	}
}

// runOptions are what apply and plan read from their flags, once.
type runOptions struct {
	asJSON bool
	conn   *conn
	src    pipeline.Source
	// cfg holds what the flags set of the run; the rest comes later.
	cfg pipeline.Config
	// allowUnknownProvider: --allow-unknown-provider.
	allowUnknownProvider bool
	// sync is --sync and its scope and limit; nil without --sync.
	sync *pipeline.Sync
}

func runOptionsFrom(c *cli.Context, stderr io.Writer) (runOptions, error) {
	asJSON, err := outputMode(c)
	if err != nil {
		return runOptions{}, err
	}
	onExists := jobs.OnExists(c.String("on-exists"))
	if !slices.Contains([]jobs.OnExists{jobs.ExistsSkip, jobs.ExistsUpdate, jobs.ExistsFail}, onExists) {
		return runOptions{}, usageErr("--on-exists %q: want skip, update or fail", onExists)
	}
	if c.Int("concurrency") < 0 || c.Int("max-concurrency") < 1 || c.Float64("rate") < 0 || c.Int("retries") < 0 || c.Int("inactive-days") < 0 {
		return runOptions{}, usageErr("--max-concurrency must be at least 1; --concurrency, --rate, --retries and --inactive-days at least 0")
	}
	if c.Duration("task-timeout") <= 0 {
		return runOptions{}, usageErr("--task-timeout must be more than 0")
	}
	cn, err := resolveConn(c, stderr)
	if err != nil {
		return runOptions{}, err
	}
	src, err := sourceFrom(c, cn.serverName, cn.phoneRegion, cn.headers)
	if err != nil {
		return runOptions{}, err
	}
	if src.Shard, src.Shards, err = shardOf(c); err != nil {
		return runOptions{}, err
	}
	if src.FirstRow, src.LastRow, err = rowsOf(c); err != nil {
		return runOptions{}, err
	}
	sync, err := syncFrom(c)
	if err != nil {
		return runOptions{}, err
	}
	if sync != nil && src.Shards > 1 {
		// Every shard would close the same accounts, racing each other.
		return runOptions{}, usageErr("--sync runs on the whole roster: give it without --shard or --shards")
	}
	src.Names = sync != nil
	cn.cfg.Rate = c.Float64("rate")
	cn.cfg.Burst = max(1, min(c.Int("concurrency"), 8))
	cn.cfg.MaxConns = max(c.Int("concurrency"), c.Int("max-concurrency"))
	return runOptions{asJSON: asJSON, conn: cn, src: src, sync: sync, allowUnknownProvider: c.Bool("allow-unknown-provider"), cfg: pipeline.Config{
		Concurrency: c.Int("concurrency"), MaxConcurrency: c.Int("max-concurrency"), OnExists: onExists,
		InactiveDays: c.Int("inactive-days"), MaxAttempts: c.Int("retries") + 1, TaskTimeout: c.Duration("task-timeout"),
	}}, nil
}

// applyOptions are apply's flags: the run's, and the journal's and output's.
type applyOptions struct {
	runOptions
	journal      string // the journal's path
	passwordsOut string
	tokensOut    string
	yes, list    bool
	// headerArgs are the options the journal's header records.
	headerArgs []string
	// commandLine is the command as given, for the resume hint.
	commandLine string
}

func applyOptionsFrom(c *cli.Context, stderr io.Writer) (applyOptions, error) {
	ro, err := runOptionsFrom(c, stderr)
	if err != nil {
		return applyOptions{}, err
	}
	ro.cfg.AllowChanged = c.Bool("allow-changed")
	ro.cfg.ResendUncertain = c.Bool("resend-uncertain")
	ro.cfg.DownLimit = c.Duration("down-limit")
	src := ro.src
	if c.Args().First() == "-" && c.String("journal") == "" {
		return applyOptions{}, usageErr("apply: the manifest comes from stdin: give --journal PATH (the same path resumes the run)")
	}
	return applyOptions{runOptions: ro, journal: journalPath(c.String("journal"), src), passwordsOut: c.String("passwords-out"), tokensOut: c.String("tokens-out"),
		yes: c.Bool("yes"), list: c.Bool("list"), commandLine: commandLine(c),
		headerArgs: []string{"action=" + c.String("action"), "on-exists=" + c.String("on-exists"),
			fmt.Sprintf("replace-lists=%t", c.Bool("replace-lists")), "match-by=" + src.Parse.MatchBy,
			fmt.Sprintf("shard=%d/%d", src.Shard, max(src.Shards, 1))}}, nil
}

// checkManifest validates the manifest once, against the server it runs
// on, and connects. Without a server name it asks the server for it first
// (whoami, a read); otherwise a bad manifest stops before any request.
// confirm sees the result, and the connected client to plan with (reads
// only), before the first write. A journal that already validated these bytes (state, sum) stands
// for a second reading.
func checkManifest(ctx context.Context, o runOptions, stderr io.Writer, state *journal.State, sum string,
	confirm func(*synapse.Client, pipeline.Source, *pipeline.Checked) error) (*synapse.Client, *pipeline.Checked, pipeline.Source, error) {
	src := o.src
	client, err := synapse.New(o.conn.cfg)
	if err != nil {
		return nil, nil, src, usageErr("%v", err)
	}
	connected := false
	if src.Parse.ServerName == "" {
		me, err := connect(ctx, client, o.conn, stderr)
		if err != nil {
			return nil, nil, src, err
		}
		_, src.Parse.ServerName, _ = strings.Cut(me, ":")
		connected = true
	}
	checked, err := validateOnce(ctx, src, state, sum, stderr)
	if err != nil {
		return nil, nil, src, err
	}
	if err := reportValidation(stderr, stderr, false, src, checked, nil); err != nil {
		return nil, nil, src, err
	}
	if !connected {
		if _, err := connect(ctx, client, o.conn, stderr); err != nil {
			return nil, nil, src, err
		}
	}
	if err := checkProviders(ctx, client, o, src, checked, stderr); err != nil {
		return nil, nil, src, err
	}
	if confirm != nil {
		if err := confirm(client, src, checked); err != nil {
			return nil, nil, src, err
		}
	}
	return client, checked, src, nil
}

// checkProviders refuses a run that names an identity provider the server
// does not list (exit 2, nothing sent), naming the ones it lists:
// Synapse stores external ids of any provider id, so a typo would write
// mappings that never match a login. --allow-unknown-provider lets such a
// run go on with a warning. A server that cannot be asked now (after the
// usual retries) stops the run with exit 3: nothing is wrong with the
// manifest, and the same command later checks and runs it.
func checkProviders(ctx context.Context, client *synapse.Client, o runOptions, src pipeline.Source, ch *pipeline.Checked, stderr io.Writer) error {
	retry := synapse.Retry{Attempts: max(o.cfg.MaxAttempts, 1), Base: o.cfg.BaseBackoff}
	var err error
	if mc := o.conn.masClient(); mc != nil {
		err = pipeline.CheckMASProviders(ctx, mc.Providers, src, ch, retry)
	} else {
		err = pipeline.CheckProvidersIn(ctx, client.SSOProviders, src, ch, retry)
	}
	if errors.Is(err, pipeline.ErrAmbiguousProvider) {
		return usageErr("%v; nothing was sent", err)
	}
	known := errors.Is(err, pipeline.ErrUnknownProvider) || errors.Is(err, pipeline.ErrCannotListProviders)
	switch {
	case err == nil:
		return nil
	case known && o.allowUnknownProvider:
		fmt.Fprintf(stderr, "synbatch: %v (--allow-unknown-provider: going on)\n", err)
		return nil
	case errors.Is(err, pipeline.ErrUnknownProvider):
		return usageErr("%v; nothing was sent: correct the provider, or give --allow-unknown-provider for one about to be configured", err)
	case known:
		return usageErr("%v; nothing was sent: give --allow-unknown-provider to go on without the check", err)
	}
	return stopped("%v; nothing was sent: run the same command again", err)
}

// validateOnce reuses the validation a journal recorded for the same bytes
// and options (a long manifest is not read twice before the first new
// row), or validates the manifest.
func validateOnce(ctx context.Context, src pipeline.Source, state *journal.State, sum string, stderr io.Writer) (*pipeline.Checked, error) {
	// --sync needs every user id the rows name, which a journal's record
	// of the validation does not keep.
	if state != nil && !src.Names {
		ch, err := pipeline.Revalidated(state, pipeline.Fingerprint(src, sum))
		if err != nil || ch != nil {
			if ch != nil {
				fmt.Fprintf(stderr, "%s: unchanged since its journal's run validated it (%d rows)\n", src.Label(), ch.Rows)
			}
			return ch, err
		}
	}
	return validateUntil(ctx, src, stderr)
}

func runApply(soft, hard context.Context, o applyOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	defer o.conn.close(hard, stderr)
	sum, err := fileSHA256(o.src.Path)
	if err != nil {
		return usageErr("%v", err)
	}
	state, err := journal.Load(o.journal)
	if err != nil {
		return err
	}
	// Checking only reads (the manifest, whoami): the first stop ends it.
	var extra []*jobs.Job
	client, checked, src, err := checkManifest(soft, o.runOptions, stderr, state, sum, func(client *synapse.Client, src pipeline.Source, ch *pipeline.Checked) error {
		var err error
		extra, err = o.checkBeforeApply(soft, client, src, ch, stdin, stderr)
		return err
	})
	if err != nil {
		return err
	}
	release, err := lockManifest(soft, o.conn.cfg.Server, sum, src, checked, extra, o.journal, stderr)
	if err != nil {
		return err
	}
	defer release()
	cfg := o.cfg
	closeFiles, err := o.openSecretFiles(&cfg, stderr)
	defer closeFiles()
	if err != nil {
		return err
	}
	cfg.Source, cfg.Checked, cfg.MatchBy, cfg.Extra, cfg.MAS = src, checked, src.Parse.MatchBy, extra, o.conn.masClient()
	cfg.Journal, cfg.State, cfg.Log = o.journal, state, stderr
	// The admin's id, which connect asked the server for (whoami) before
	// any row: the run header records who ran it.
	actor := o.conn.sess.me
	cfg.Header = journal.Header{Tool: "synbatch", Version: versionInfo().Version, Manifest: src.Label(), ManifestSHA256: sum,
		Server: o.conn.cfg.Server, Actor: actor, Started: time.Now().UTC(), Insecure: o.conn.cfg.Insecure,
		Validated: checked.Record(pipeline.Fingerprint(src, sum)), Args: o.headerArgs}
	cfg.Progress = newProgress(stderr, "apply")
	if !o.asJSON {
		cfg.OnRecord = rowPrinter(stdout, o.list)
	}
	stats, runErr := pipeline.Apply(soft, hard, client, cfg)
	if stats != nil {
		if err := printStats(stdout, stderr, o.asJSON, stats, o.commandLine); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	return failedRowsErr(stats, o.journal)
}

// checkBeforeApply is what apply checks once the manifest is valid and
// before it takes the lock: that generated secrets have a file to go to,
// the accounts --sync would close (returned) within --sync's limit, and the
// admin's confirmation of what the run takes.
func (o applyOptions) checkBeforeApply(ctx context.Context, client *synapse.Client, src pipeline.Source, ch *pipeline.Checked, stdin io.Reader, stderr io.Writer) ([]*jobs.Job, error) {
	if n := ch.Generate - ch.Tokens; n > 0 && o.passwordsOut == "" {
		return nil, usageErr("%d rows generate a password: give --passwords-out FILE to keep them", n)
	}
	if ch.Tokens > 0 && o.tokensOut == "" && o.passwordsOut == "" {
		return nil, usageErr("%d rows generate a registration token: give --tokens-out FILE to keep them beside their labels", ch.Tokens)
	}
	extra, err := syncJobs(ctx, client, o.runOptions, src, ch)
	if err != nil {
		return nil, err
	}
	if o.sync != nil {
		if err := pipeline.CheckSyncMax(*o.sync, len(extra)); err != nil {
			return nil, usageErr("%v; nothing was sent", err)
		}
	}
	cfg := o.cfg
	cfg.Source, cfg.Checked, cfg.MatchBy, cfg.Extra, cfg.MAS = src, ch, src.Parse.MatchBy, extra, o.conn.masClient()
	return extra, confirmDestructive(ctx, client, cfg, ch, o.yes, stdin, stderr)
}

// openSecretFiles opens --passwords-out and --tokens-out into cfg (a file
// resumed when the journal exists). closeAll, never nil, even with an
// error, closes what was opened and says which generated passwords never
// took effect.
func (o applyOptions) openSecretFiles(cfg *pipeline.Config, stderr io.Writer) (closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	_, statErr := os.Stat(o.journal)
	resume := statErr == nil
	if o.passwordsOut != "" {
		pf, err := jobs.OpenPasswordFile(o.passwordsOut, resume)
		if err != nil {
			return closeAll, usageErr("%v", err)
		}
		if n := len(pf.NotInEffect); n > 0 {
			fmt.Fprintf(stderr, "synbatch: %s: %d generated %s never took effect (their last line has an empty password): %s\n",
				o.passwordsOut, n, plural(n, "password", "passwords"), names(pf.NotInEffect))
		}
		closers = append(closers, func() { pf.Close() }, func() {
			if m := pf.Marked(); len(m) > 0 {
				fmt.Fprintf(stderr, "synbatch: %s: %d generated %s never took effect (the server refused the writes that carried them, or none was sent) and %s marked so with an empty password: %s\n",
					o.passwordsOut, len(m), plural(len(m), "password", "passwords"), plural(len(m), "is", "are"), names(m))
			}
		})
		cfg.Passwords = pf
	}
	if o.tokensOut != "" {
		tf, err := jobs.OpenTokenFile(o.tokensOut, resume)
		if err != nil {
			return closeAll, usageErr("%v", err)
		}
		closers = append(closers, func() { tf.Close() })
		cfg.Tokens = tf
	}
	return closeAll, nil
}

// failedRowsErr is the error of a run that ended with failed or uncertain
// rows (exit status exitFailed), nil when none.
func failedRowsErr(stats *pipeline.Stats, journalPath string) error {
	if stats.Failed() == 0 {
		return nil
	}
	what := fmt.Sprintf("%d rows failed", stats.Failed())
	if n := stats.Outcomes[string(journal.Uncertain)]; n > 0 {
		what = fmt.Sprintf("%d rows failed or uncertain (%d uncertain: listed above; each later run checks them again, --resend-uncertain sends them)", stats.Failed(), n)
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("%s: synbatch journal summary %s", what, journalPath)}
}

// rowPrinter prints a line for each row as it is journaled (with list),
// and always for an uncertain row: it needs a person's decision.
func rowPrinter(stdout io.Writer, list bool) func(journal.Record) {
	var mu sync.Mutex
	return func(rec journal.Record) {
		if !list && rec.Outcome != journal.Uncertain {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(stdout, rowLine(rec))
	}
}

// confirmPlanMax is the most destructive rows a run with --yes plans to
// say what it takes: a data subject request is a few rows, and naming
// every effect there is worth the reads; a bulk run says its row counts.
const confirmPlanMax = 100

// confirmDestructive says what the run takes from users and, on a
// terminal, asks before going on; without a terminal it needs --yes.
// The counts come from a plan of the destructive rows (reads only; with
// --yes only up to confirmPlanMax of them): a row already done, or whose
// user does not exist, takes nothing and is not counted; the rows that
// erase an account are named, and every other effect is counted by kind
// (rooms whose events are redacted, media files deleted, SSO mappings
// removed), so a deactivate row that also redacts says so. When no row
// would take anything, there is nothing to confirm.
func confirmDestructive(ctx context.Context, client *synapse.Client, cfg pipeline.Config, ch *pipeline.Checked,
	yes bool, stdin io.Reader, stderr io.Writer) error {
	t := runTakes{counts: map[jobs.Action]int{}}
	some := len(cfg.Extra) > 0
	for _, a := range jobs.Actions() {
		if a.Destructive() && ch.Actions[a] > 0 {
			t.counts[a], some = ch.Actions[a], true
		}
	}
	if !some {
		return nil
	}
	// Accounts --sync closes are counted apart: the admin confirms how
	// many people the roster does not name.
	t.synced = len(cfg.Extra)
	rows := 0
	for _, n := range t.counts {
		rows += n
	}
	if !yes || rows <= confirmPlanMax {
		clear(t.counts)
		t.synced = 0
		if _, err := pipeline.PlanOf(ctx, client, cfg, jobs.Action.Destructive, t.add); err != nil {
			return fmt.Errorf("%w: plan the rows to confirm: %w", pipeline.ErrStopped, err)
		}
	}
	what := t.describe(cfg.Extra)
	if what == "" {
		return nil
	}
	if yes {
		fmt.Fprintf(stderr, "synbatch: this run will %s (--yes given)\n", what)
		return nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usageErr("this run would %s: give --yes to go on without a terminal (nothing was sent; synbatch plan shows each change)", what)
	}
	fmt.Fprintf(stderr, "This run will %s.\nType yes to go on: ", what)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return usageErr("not confirmed: nothing was sent")
	}
	return nil
}

// runTakes is what a run takes from users, as confirmDestructive tells it.
type runTakes struct {
	counts                 map[jobs.Action]int // rows by action
	synced                 int                 // accounts --sync closes
	erases                 int                 // rows that erase an account
	erasing                []string            // the first ten of them
	rooms, media, mappings int                 // effects, summed over rows
}

// add counts a planned destructive row that takes something (one that
// creates or updates).
func (t *runTakes) add(p pipeline.PlannedRow) {
	if p.Kind != jobs.KindUpdate && p.Kind != jobs.KindCreate {
		return
	}
	if p.Sync {
		t.synced++
		return
	}
	t.counts[p.Action]++
	t.rooms += p.RedactRooms
	t.media += p.MediaFiles
	t.mappings += p.MappingsRemoved
	if p.Erases {
		if t.erases++; t.erases <= 10 {
			t.erasing = append(t.erasing, fmt.Sprintf("row %d %s", p.Row, p.UserID))
		}
	}
}

// describe says what the run takes, in a phrase that follows "this run
// will"; "" when it takes nothing. extra are the --sync jobs.
func (t *runTakes) describe(extra []*jobs.Job) string {
	var parts []string
	if t.synced > 0 {
		parts = append(parts, fmt.Sprintf("%s %d %s (%s)", extra[0].Action, t.synced, plural(t.synced, "account", "accounts"), extra[0].Why()))
	}
	for _, a := range jobs.Actions() {
		if n := t.counts[a]; n > 0 {
			one, many := "user", "users"
			if a.Room() {
				one, many = "room", "rooms"
			}
			parts = append(parts, fmt.Sprintf("%s %d %s", a, n, plural(n, one, many)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	what := strings.Join(parts, ", ")
	if t.erases > 0 {
		more := ""
		if t.erases > len(t.erasing) {
			more = fmt.Sprintf(" and %d more", t.erases-len(t.erasing))
		}
		what += " (erasing " + strings.Join(t.erasing, ", ") + more + ")"
	}
	var effects []string
	if t.rooms > 0 {
		effects = append(effects, fmt.Sprintf("redact their events in %d %s", t.rooms, plural(t.rooms, "room", "rooms")))
	}
	if t.media > 0 {
		effects = append(effects, fmt.Sprintf("delete %d media %s", t.media, plural(t.media, "file", "files")))
	}
	if t.mappings > 0 {
		effects = append(effects, fmt.Sprintf("remove %d SSO %s", t.mappings, plural(t.mappings, "mapping", "mappings")))
	}
	if len(effects) > 0 {
		what += "; in all: " + strings.Join(effects, ", ")
	}
	return what
}

// printStats sums a run up; commandLine is the command that resumes it.
func printStats(stdout, stderr io.Writer, asJSON bool, s *pipeline.Stats, commandLine string) error {
	if asJSON {
		return writeJSON(stdout, s)
	}
	var parts []string
	// Done is told as created and updated: "done" lumped a new account
	// with an edited one, and an admin reads the run by that difference.
	for _, c := range []struct {
		n    int
		what string
	}{{s.Created, "created"}, {s.Updated, "updated"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	for _, o := range []journal.Outcome{journal.Unchanged, journal.Skipped, journal.Failed, journal.Uncertain} {
		if n := s.Outcomes[string(o)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if s.Resumed > 0 {
		parts = append(parts, fmt.Sprintf("%d finished by an earlier run", s.Resumed))
	}
	if s.Outside > 0 {
		parts = append(parts, fmt.Sprintf("%d outside --rows", s.Outside))
	}
	if s.NotDone > 0 {
		parts = append(parts, fmt.Sprintf("%d not done", s.NotDone))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	fmt.Fprintf(stdout, "%d rows: %s\n", s.Rows, strings.Join(parts, ", "))
	level := fmt.Sprintf("%d rows in flight", s.Concurrency)
	if s.Adaptive {
		level = fmt.Sprintf("adaptive concurrency reached %d rows in flight (%d at the end)", s.ConcurrencyMax, s.Concurrency)
	}
	fmt.Fprintf(stdout, "%.1fs, %.1f rows/s, %d requests (%d writes), %s\n", s.ElapsedS, s.RowsPerS, s.Requests, s.Writes, level)
	fmt.Fprintf(stdout, "journal: %s\n", s.Journal)
	if s.Repaired != "" {
		fmt.Fprintf(stderr, "synbatch: the journal's last line was torn by a kill; it was cut and kept in %s\n", s.Repaired)
	}
	if s.Failed() > 0 {
		fmt.Fprintf(stdout, "failures: synbatch journal summary %s\n", s.Journal)
	}
	if s.NotDone > 0 {
		fmt.Fprintf(stderr, "synbatch: to resume, run the same command again: %s\n", commandLine)
	}
	return nil
}

// rowLine is one row's result for people: row, user, outcome and why.
func rowLine(r journal.Record) string {
	var b strings.Builder
	if r.Row == 0 && strings.HasPrefix(r.Key, "sync-") {
		fmt.Fprintf(&b, "sync %s %s: %s", r.UserID, r.Action, r.Outcome)
	} else {
		fmt.Fprintf(&b, "row %d %s: %s", r.Row, r.UserID, r.Outcome)
	}
	if len(r.Changed) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(r.Changed, ", "))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, ": %s", r.Note)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, ": %s", r.Error)
	}
	return b.String()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// names lists up to ten names, and how many more.
func names(s []string) string {
	if len(s) <= 10 {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:10], ", "), len(s)-10)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// journalPath is --journal (flag), or the manifest's default journal (one
// per shard, since shards may share a directory).
func journalPath(flag string, src pipeline.Source) string {
	switch {
	case flag != "":
		return flag
	case src.Shards > 1:
		return fmt.Sprintf("%s.shard-%d-of-%d.journal.jsonl", src.Path, src.Shard, src.Shards)
	}
	return src.Path + ".journal.jsonl"
}

// commandLine is the command as run was given it (os.Args in main).
func commandLine(c *cli.Context) string {
	args, _ := c.App.Metadata[argsKey].([]string)
	return strings.Join(args, " ")
}

// argsKey keeps the command line in the app's Metadata.
const argsKey = "args"

// syncFrom reads --sync, --sync-scope and --sync-max; nil without --sync.
func syncFrom(c *cli.Context) (*pipeline.Sync, error) {
	a := jobs.Action(strings.ToLower(c.String("sync")))
	if a == "" {
		if c.IsSet("sync-scope") || c.IsSet("sync-max") {
			return nil, usageErr("--sync-scope and --sync-max go with --sync deactivate|lock|suspend")
		}
		return nil, nil
	}
	if !slices.Contains(jobs.SyncActions, a) {
		return nil, usageErr("--sync %q: want deactivate, lock or suspend", c.String("sync"))
	}
	if _, err := pipeline.CompileScope(c.String("sync-scope")); err != nil {
		return nil, usageErr("%v", err)
	}
	if c.Int("sync-max") < 0 {
		return nil, usageErr("--sync-max must be 0 or more")
	}
	return &pipeline.Sync{Action: a, Scope: c.String("sync-scope"), Max: c.Int("sync-max")}, nil
}

// syncJobs lists the accounts --sync closes (none without it): in scope,
// named by no row, never the admin running the run. It only reads.
func syncJobs(ctx context.Context, client *synapse.Client, o runOptions, src pipeline.Source, ch *pipeline.Checked) ([]*jobs.Job, error) {
	if o.sync == nil {
		return nil, nil
	}
	s := *o.sync
	me, err := client.Self(ctx)
	if err != nil {
		return nil, stopped("%v", err)
	}
	s.Keep = append(s.Keep, me)
	retry := synapse.Retry{Attempts: max(o.cfg.MaxAttempts, 1), Base: o.cfg.BaseBackoff}
	extra, err := pipeline.SyncJobs(ctx, client, s, src.Parse.ServerName, ch, retry)
	if err != nil {
		if synapse.IsAuth(err) || synapse.IsNet(err) || synapse.IsRetryable(err) {
			return nil, stopped("%v; nothing was sent", err)
		}
		return nil, usageErr("%v; nothing was sent", err)
	}
	return extra, nil
}
