package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/pipeline"
	"github.com/synbatch/synbatch/synapse"
)

func exportDataCommand(soft, hard context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(connFlags(), poolFlags()...)
	flags = append(flags, outputFlag(),
		&cli.StringFlag{Name: "out", Required: true, Usage: "output `DIR`: one folder (or .zip) per user, and index.csv"},
		&cli.StringFlag{Name: "users", Usage: "a `MANIFEST` naming the users (any format; rows matched like apply's)"},
		&cli.StringFlag{Name: "sheet", Usage: "XLSX `SHEET` of --users (default: the first)"},
		&cli.StringFlag{Name: "match-by", Value: "user_id", Usage: "how --users rows name their user: `user_id|email|external_id:PROVIDER`"},
		&cli.BoolFlag{Name: "media", Usage: "also download the files of each user's own media, with their checksums"},
		&cli.BoolFlag{Name: "archive", Usage: "pack each user's folder into FOLDER.zip for handing over"},
		&cli.GenericFlag{Name: "events", Value: &eventsMode{}, Usage: "also write events/ROOM.jsonl per room the user has a membership in: " +
			"the events they sent (--events), or every event of the rooms they are or were in (--events=all)"},
		&cli.BoolFlag{Name: "events-scan-rooms", Usage: "with --events, also find the rooms every local member has left " +
			"(no Admin API lists them): reads the member events of each such room on the server, once a run"},
		&cli.IntFlag{Name: "events-page-size", Value: 500, Usage: "events per request while reading a room (`1-1000`)"},
	)
	return &cli.Command{
		Name:      "data",
		Usage:     "everything the server holds about users, one folder per user (for an access request, or before an erase)",
		ArgsUsage: "[@user:server...]",
		Description: "Writes user.json, devices.json, connections.json, rooms.json, account_data.json, media.json,\n" +
			"pushers.json, ratelimit.json and manifest.json (each file's size and sha256) per user. Run again\n" +
			"to resume: complete bundles are skipped, half-written ones redone. With --events, also\n" +
			"memberships.json, invites.json (pending invites and knocks) and events/ROOM.jsonl per room;\n" +
			"a resumed run keeps the rooms an earlier one read to the end. On a server whose accounts live in MAS,\n" +
			"also mas_user.json, mas_emails.json, mas_upstream_links.json and mas_sessions.json: what MAS holds.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			o, err := exportDataOptionsFrom(c, stderr)
			if err != nil {
				return err
			}
			return runExportData(soft, hard, o, stdout, stderr)
		},
	}
}

// exportDataOptions are export data's flags and arguments.
type exportDataOptions struct {
	exportConn
	asJSON bool
	out    string
	// args, usersFile, sheet and matchBy name the users (exportUsersFrom).
	args                      []string
	usersFile, sheet, matchBy string
	media, archive            bool
	events                    string // "", export.EventsSent or export.EventsAll
	scanRooms                 bool
	eventsPageSize            int
}

func exportDataOptionsFrom(c *cli.Context, stderr io.Writer) (exportDataOptions, error) {
	if c.NArg() == 0 && c.String("users") == "" {
		return exportDataOptions{}, usageErr("export data: name users as arguments or give --users FILE")
	}
	if err := jobs.CheckMatchBy(c.String("match-by")); err != nil {
		return exportDataOptions{}, usageErr("%v", err)
	}
	events := c.Generic("events").(*eventsMode).mode
	if events != "" && slices.Contains(c.Args().Slice(), "all") {
		// --events is a switch: "--events all" leaves "all" as a user.
		return exportDataOptions{}, usageErr("export data: write --events=all (\"--events all\" would export a user named all)")
	}
	if c.Bool("events-scan-rooms") && events == "" {
		return exportDataOptions{}, usageErr("export data: --events-scan-rooms goes with --events")
	}
	if n := c.Int("events-page-size"); n < 1 || n > 1000 {
		return exportDataOptions{}, usageErr("--events-page-size %d: want 1 to 1000 (Synapse sends at most 1000)", n)
	}
	asJSON, err := outputMode(c)
	if err != nil {
		return exportDataOptions{}, err
	}
	ec, err := exportConnFrom(c, stderr)
	if err != nil {
		return exportDataOptions{}, err
	}
	return exportDataOptions{exportConn: ec, asJSON: asJSON, out: c.String("out"), args: c.Args().Slice(),
		usersFile: c.String("users"), sheet: c.String("sheet"), matchBy: c.String("match-by"),
		media: c.Bool("media"), archive: c.Bool("archive"), events: events, scanRooms: c.Bool("events-scan-rooms"),
		eventsPageSize: c.Int("events-page-size")}, nil
}

// runExportData stops at once on soft while it connects and resolves the
// users; then soft starts no new bundle and hard ends those in flight.
func runExportData(soft, hard context.Context, o exportDataOptions, stdout, stderr io.Writer) error {
	defer o.conn.close(hard, stderr)
	client, err := o.connect(soft, stderr)
	if err != nil {
		return err
	}
	users, unmatched, err := exportUsersFrom(soft, o, client, o.conn.masClient(), stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, "export data")
	prog.Start(len(users), nil)
	last := 0
	results, err := export.Bundles(hard, client, export.BundleConfig{Out: o.out, Users: users, MAS: o.conn.masClient(), Stop: soft.Done(),
		Concurrency: o.concurrency, MaxConcurrency: o.maxConcurrency, Media: o.media, Archive: o.archive,
		Events: o.events, EventsPageSize: o.eventsPageSize, ScanRooms: o.scanRooms,
		Tool: "synbatch " + versionInfo().Version, Progress: func(done int) { prog.Add(done - last); last = done }})
	prog.Finish()
	// A row whose user was not found fails alone, as an unknown
	// user id does: the others are still exported.
	results = append(unmatched, results...)
	failed, werr := reportBundles(stdout, stderr, o.asJSON, o.out, results)
	if werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("%w: export data: %w (run the same command again to resume)", pipeline.ErrStopped, err)
	}
	if failed > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d users failed", failed, len(users)+len(unmatched))}
	}
	return nil
}

// eventsMode is --events: a switch (the user's own events) that also takes
// --events=all. It is a boolean flag to the parser, so a bare --events does
// not swallow the user id after it.
type eventsMode struct{ mode string }

func (e *eventsMode) IsBoolFlag() bool { return true }

func (e *eventsMode) String() string { return e.mode }

func (e *eventsMode) Set(v string) error {
	switch v {
	case "true", "sent":
		e.mode = export.EventsSent
	case "all":
		e.mode = export.EventsAll
	case "false":
		e.mode = ""
	default:
		return fmt.Errorf("want --events or --events=all, not %q", v)
	}
	return nil
}

// reportBundles prints what became of each user's bundle (a line each, or
// with asJSON one summary) and counts the failed ones.
func reportBundles(stdout, stderr io.Writer, asJSON bool, out string, results []export.BundleResult) (failed int, _ error) {
	human := stdout
	if asJSON {
		human = io.Discard
	}
	summary := dataSummary{Out: out, Bundles: []dataBundle{}}
	for _, r := range results {
		b := dataBundle{UserID: r.UserID, Path: r.Path, Files: r.Files, Bytes: r.Bytes, Resumed: r.Skipped, Notes: r.Notes}
		switch {
		case r.Err != nil && errors.Is(r.Err, export.ErrNotRun):
			continue
		case r.Err != nil:
			failed++
			b.Error = r.Err.Error()
			fmt.Fprintf(human, "%s: failed: %v\n", r.UserID, r.Err)
		case r.Skipped:
			fmt.Fprintf(human, "%s: %s (complete from an earlier run)\n", r.UserID, r.Path)
		default:
			fmt.Fprintf(human, "%s: %s (%d files, %d bytes)\n", r.UserID, r.Path, r.Files, r.Bytes)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(stderr, "%s: note: %s\n", r.UserID, n)
		}
		summary.Bundles = append(summary.Bundles, b)
	}
	summary.Failed = failed
	if asJSON {
		return failed, writeJSON(stdout, summary)
	}
	return failed, nil
}

// exportUsersFrom collects the users to export: the arguments, then the
// rows of --users, resolved like apply resolves them. A row that names no
// user (an email nobody has) comes back as a failed result of its own.
func exportUsersFrom(ctx context.Context, o exportDataOptions, client *synapse.Client, masClient *mas.Client, stderr io.Writer) (users []string, unmatched []export.BundleResult, _ error) {
	me, err := client.Whoami(ctx)
	if err != nil {
		return nil, nil, err
	}
	_, serverName, _ := strings.Cut(me, ":")
	for _, a := range o.args {
		id, err := jobs.NormaliseUserID(a, serverName)
		if err != nil {
			return nil, nil, usageErr("%v", err)
		}
		users = append(users, id)
	}
	path := o.usersFile
	if path == "" {
		return users, unmatched, nil
	}
	src := pipeline.Source{Path: path, Sheet: o.sheet, Parse: jobs.ParseOptions{File: path, ServerName: serverName,
		DefaultAction: jobs.Update, MatchBy: o.matchBy}}
	checked, err := pipeline.Validate(src)
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	if checked.Total > 0 {
		for _, line := range collapseProblems(checked.Problems) {
			fmt.Fprintln(stderr, line)
		}
		return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("%w: %s", pipeline.ErrInvalid, path)}
	}
	r, err := formats.Open(path, formats.Options{Sheet: src.Sheet})
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	defer r.Close()
	env := jobs.Env{Client: client, MAS: masClient, MatchBy: src.Parse.MatchBy, ServerName: serverName}
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, usageErr("%v", err)
		}
		j, probs := jobs.Parse(row, src.Parse)
		if len(probs) > 0 {
			return nil, nil, usageErr("%v", probs[0])
		}
		id, err := j.Resolve(ctx, env)
		if jobs.IsRowError(err) {
			unmatched = append(unmatched, export.BundleResult{UserID: cmp.Or(j.Subject(), j.Match), Err: fmt.Errorf("%s:%d: %w", path, row.Num, err)})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, row.Num, err)
		}
		users = append(users, id)
	}
	return users, unmatched, nil
}

// dataSummary is what export data prints with --output json: a bundle per
// user it got to, with what failed.
type dataSummary struct {
	Out     string       `json:"out"`
	Bundles []dataBundle `json:"bundles"`
	Failed  int          `json:"failed"`
}

type dataBundle struct {
	UserID  string   `json:"user_id"`
	Path    string   `json:"path,omitempty"`
	Files   int      `json:"files,omitempty"`
	Bytes   int64    `json:"bytes,omitempty"`
	Resumed bool     `json:"resumed,omitempty"` // complete from an earlier run
	Error   string   `json:"error,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}
