package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Defaults for a production server: at most 8 requests in flight stays
// inside Synapse's pool of 10 password-hashing threads, and 100 requests/s
// (a row takes 2 to 5) leaves the main process room for its users.
const (
	defaultConcurrency = 8
	defaultRate        = 100
)

func applyCommand(soft, hard context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(manifestFlags(), connFlags()...)
	flags = append(flags, outputFlag(),
		&cli.StringFlag{Name: "journal", Usage: "result journal (default MANIFEST.journal.jsonl); the same journal resumes the run"},
		&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: defaultConcurrency, Usage: "requests in flight at most"},
		&cli.Float64Flag{Name: "rate", Value: defaultRate, Usage: "requests per second at most, over all workers; 0 lifts the limit"},
		&cli.StringFlag{Name: "on-exists", Value: "skip", Usage: "what a create row does when the user exists: skip, update or fail"},
		&cli.BoolFlag{Name: "list", Aliases: []string{"l"}, Usage: "print a line for each row as it finishes"},
		&cli.IntFlag{Name: "retries", Value: 4, Usage: "times a row is retried after a 429, a 5xx or a lost connection"},
	)
	return &cli.Command{
		Name:      "apply",
		Usage:     "make every row of a manifest true on the server, resumably",
		ArgsUsage: "MANIFEST",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			return runApply(soft, hard, c, stdout, stderr)
		},
	}
}

func runApply(soft, hard context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	asJSON, err := outputMode(c)
	if err != nil {
		return err
	}
	onExists := jobs.OnExists(c.String("on-exists"))
	if !slices.Contains([]jobs.OnExists{jobs.ExistsSkip, jobs.ExistsUpdate, jobs.ExistsFail}, onExists) {
		return usageErr("--on-exists %q: want skip, update or fail", onExists)
	}
	if c.Int("concurrency") < 1 || c.Float64("rate") < 0 || c.Int("retries") < 0 {
		return usageErr("--concurrency must be at least 1, --rate and --retries at least 0")
	}
	cn, err := resolveConn(c, stderr)
	if err != nil {
		return err
	}
	src, err := sourceFrom(c, cn.serverName)
	if err != nil {
		return err
	}
	problemsTo := stderr
	// Validate before anything is sent: a bad manifest sends nothing.
	checked, err := pipeline.Validate(src)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := reportValidation(problemsTo, stderr, false, src, checked); err != nil {
		return err
	}

	cn.cfg.Rate = c.Float64("rate")
	cn.cfg.Burst = max(1, c.Int("concurrency"))
	cn.cfg.MaxConns = c.Int("concurrency")
	client, err := synapse.New(cn.cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	me, err := connect(hard, client)
	if err != nil {
		return err
	}
	if src.Parse.ServerName == "" {
		// Now the server name is known: check bare localparts and foreign ids.
		_, name, _ := strings.Cut(me, ":")
		src.Parse.ServerName = name
		if checked, err = pipeline.Validate(src); err != nil {
			return usageErr("%v", err)
		}
		if err := reportValidation(problemsTo, stderr, false, src, checked); err != nil {
			return err
		}
	}

	sum, err := fileSHA256(src.Path)
	if err != nil {
		return usageErr("%v", err)
	}
	jpath := c.String("journal")
	if jpath == "" {
		jpath = src.Path + ".journal.jsonl"
	}
	header := journal.Header{Tool: "synbatch", Version: version, Manifest: src.Path, ManifestSHA256: sum,
		Server: cn.cfg.Server, Started: time.Now().UTC(), Insecure: cn.cfg.Insecure,
		Args: []string{"action=" + c.String("action"), "on-exists=" + string(onExists), fmt.Sprintf("replace-lists=%t", c.Bool("replace-lists"))}}

	isTTY := false
	if f, ok := stderr.(*os.File); ok {
		isTTY = term.IsTerminal(int(f.Fd()))
	}
	var onRecord func(journal.Record)
	if c.Bool("list") && !asJSON {
		var mu sync.Mutex
		onRecord = func(r journal.Record) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(stdout, rowLine(r))
		}
	}
	stats, runErr := pipeline.Apply(soft, hard, client, pipeline.Config{
		OnRecord: onRecord,
		Source:   src, Checked: checked, Journal: jpath, Header: header,
		Concurrency: c.Int("concurrency"), OnExists: onExists, MaxAttempts: c.Int("retries") + 1,
		Progress: pipeline.NewProgress(stderr, isTTY, "apply"),
	})
	if stats != nil {
		if err := printStats(stdout, stderr, asJSON, stats, c); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if stats.Failed() > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d rows failed: synbatch journal summary %s", stats.Failed(), jpath)}
	}
	return nil
}

func printStats(stdout, stderr io.Writer, asJSON bool, s *pipeline.Stats, c *cli.Context) error {
	if asJSON {
		return writeJSON(stdout, s)
	}
	var parts []string
	for _, o := range []journal.Outcome{journal.Done, journal.Unchanged, journal.Skipped, journal.Failed, journal.Uncertain} {
		if n := s.Outcomes[string(o)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if s.Resumed > 0 {
		parts = append(parts, fmt.Sprintf("%d finished by an earlier run", s.Resumed))
	}
	if s.NotDone > 0 {
		parts = append(parts, fmt.Sprintf("%d not done", s.NotDone))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	fmt.Fprintf(stdout, "%d rows: %s\n", s.Rows, strings.Join(parts, ", "))
	fmt.Fprintf(stdout, "%.1fs, %.1f rows/s, %d requests (%d writes)\n", s.ElapsedS, s.RowsPerS, s.Requests, s.Writes)
	fmt.Fprintf(stdout, "journal: %s\n", s.Journal)
	if s.Repaired != "" {
		fmt.Fprintf(stderr, "synbatch: the journal's last line was torn by a kill; it was cut and kept in %s\n", s.Repaired)
	}
	if s.Failed() > 0 {
		fmt.Fprintf(stdout, "failures: synbatch journal summary %s\n", s.Journal)
	}
	if s.NotDone > 0 {
		fmt.Fprintf(stderr, "synbatch: to resume, run the same command again: %s\n", strings.Join(os.Args, " "))
	}
	return nil
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

// rowLine is one row's result for people: row, user, outcome and why.
func rowLine(r journal.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "row %d %s: %s", r.Row, r.UserID, r.Outcome)
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
