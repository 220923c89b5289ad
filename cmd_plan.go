package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/pipeline"
)

// planCommand is plan. Its context is the soft one: plan only reads, so
// the first Ctrl-C or SIGTERM ends it (exit 3) instead of announcing a
// stop and planning every row anyway.
func planCommand(soft context.Context, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what apply would change, row by row, sending only GET requests",
		ArgsUsage: "MANIFEST",
		Flags:     runFlags(),
		Action: func(c *cli.Context) error {
			o, err := runOptionsFrom(c, stderr)
			if err != nil {
				return err
			}
			return runPlan(soft, o, stdout, stderr)
		},
	}
}

func runPlan(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	defer o.conn.close(ctx, stderr)
	client, checked, src, err := checkManifest(ctx, o, stderr, nil, "", nil)
	if err != nil {
		return err
	}
	cfg := o.cfg
	cfg.Source, cfg.Checked, cfg.MatchBy, cfg.MAS = src, checked, src.Parse.MatchBy, o.conn.masClient()
	if cfg.Extra, err = syncJobs(ctx, client, o, src, checked); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	// Warnings are the rows' notes that say "warning:" (an account nobody
	// can log in to): counted in the summary, so a long plan's last line
	// says there is something to read above it. Plan calls back one row
	// at a time.
	warnings := 0
	counts, err := pipeline.Plan(ctx, client, cfg, func(p pipeline.PlannedRow) {
		for _, n := range p.Notes {
			if strings.HasPrefix(n, "warning:") {
				warnings++
			}
		}
		if o.asJSON {
			_ = enc.Encode(p) // a closed stdout shows in the summary's write too
			return
		}
		fmt.Fprintln(stdout, planLine(p))
	})
	if err != nil {
		return fmt.Errorf("%w: %w", pipeline.ErrStopped, err)
	}
	if writes := client.Writes(); writes != 0 {
		// plan must never write; say so loudly if it ever did.
		return fmt.Errorf("internal error: plan sent %d writes", writes)
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	if o.asJSON {
		// "warnings" only when there are some: a pipeline that matches
		// the last line of a clean plan still finds it as it was.
		last := map[string]any{"counts": counts}
		if warnings > 0 {
			last["warnings"] = warnings
		}
		if err := enc.Encode(last); err != nil {
			return err
		}
	} else {
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%d %s", counts[jobs.Kind(k)], k))
		}
		if warnings > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", warnings, plural(warnings, "warning", "warnings")))
		}
		rows := fmt.Sprintf("%d rows", checked.Rows)
		if o.sync != nil {
			rows += fmt.Sprintf(" and %d %s that --sync %s closes", len(cfg.Extra), plural(len(cfg.Extra), "account", "accounts"), o.sync.Action)
		}
		fmt.Fprintf(stdout, "%s: %s\n", rows, strings.Join(parts, ", "))
	}
	if o.sync != nil {
		if err := pipeline.CheckSyncMax(*o.sync, len(cfg.Extra)); err != nil {
			return usageErr("%v (apply would send nothing)", err)
		}
	}
	// A pipeline gates on the plan: exit 1 when apply would fail rows.
	if bad := counts[jobs.KindConflict] + counts[jobs.KindError]; bad > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d rows would fail (conflict or error): fix them before apply", bad)}
	}
	return nil
}

// planLine is one row of a plan for people.
func planLine(p pipeline.PlannedRow) string {
	var b strings.Builder
	if p.Sync {
		fmt.Fprintf(&b, "sync %s %s: %s", p.UserID, p.Action, p.Kind)
	} else {
		fmt.Fprintf(&b, "row %d %s %s: %s", p.Row, p.UserID, p.Action, p.Kind)
	}
	var items []string
	for _, ch := range p.Changes {
		items = append(items, ch.String())
	}
	for i, s := range append(items, p.Notes...) {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + s)
	}
	if p.Reason != "" {
		b.WriteString(": " + p.Reason)
	}
	return b.String()
}
