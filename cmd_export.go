package main

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/pipeline"
	"github.com/synbatch/synbatch/synapse"
)

// exportCommand's subcommands only read the server, so the first Ctrl-C
// (soft) stops them: a table export cancels its reads (what it fetched
// is resumed), export data finishes the bundles in flight and starts no
// other. The second (hard) also cancels those.
func exportCommand(soft, hard context.Context, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "export users as a manifest, everything the server holds about users, the room list, or the registration tokens",
		Subcommands: []*cli.Command{
			exportUsersCommand(soft, stdout, stderr),
			exportDataCommand(soft, hard, stdout, stderr),
			exportRoomsCommand(soft, stdout, stderr),
			exportTokensCommand(soft, stdout, stderr),
		},
	}
}

// poolFlags bound the load an export puts on the server, like apply's.
func poolFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "concurrency", Aliases: []string{"j"}, Usage: "`N` requests in flight, fixed; 0 (the default) adapts to the server's latency, as apply does"},
		&cli.IntFlag{Name: "max-concurrency", Value: defaultMaxConcurrency, Usage: "at most `N` requests in flight for the adaptive level"},
		&cli.Float64Flag{Name: "rate", Value: defaultRate, Usage: "at most `PER_SECOND` requests a second; 0 (the default) sets no cap"},
	}
}

// exportConn is what every export reads from its connection and load
// flags: the server to use and how hard to press it.
type exportConn struct {
	conn                        *conn
	concurrency, maxConcurrency int
}

// exportConnFrom checks the load flags and reads the connection settings
// as apply does; it sends nothing.
func exportConnFrom(c *cli.Context, stderr io.Writer) (exportConn, error) {
	if c.Int("concurrency") < 0 || c.Int("max-concurrency") < 1 || c.Float64("rate") < 0 {
		return exportConn{}, usageErr("--max-concurrency must be at least 1; --concurrency and --rate at least 0")
	}
	cn, err := resolveConn(c, stderr)
	if err != nil {
		return exportConn{}, err
	}
	workers := cmp.Or(c.Int("concurrency"), c.Int("max-concurrency"))
	cn.cfg.Rate, cn.cfg.Burst, cn.cfg.MaxConns = c.Float64("rate"), workers, workers
	return exportConn{conn: cn, concurrency: c.Int("concurrency"), maxConcurrency: c.Int("max-concurrency")}, nil
}

// connect makes the client and checks, as apply does, that the token is
// an admin's. The caller closes o.conn when done, failed or not (connect
// may have opened a MAS personal session).
func (o exportConn) connect(ctx context.Context, stderr io.Writer) (*synapse.Client, error) {
	client, err := synapse.New(o.conn.cfg)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if _, err := connect(ctx, client, o.conn, stderr); err != nil {
		return nil, err
	}
	return client, nil
}

// tableOptions are what a table export (users, rooms, registration
// tokens) reads from its flags besides its own.
type tableOptions struct {
	exportConn
	out, format string // --out, and --format for --out -
	asJSON      bool   // --output json: the summary as JSON
}

// tableOptionsFrom checks a table export's arguments (--out before any
// request) and reads its output and connection flags.
func tableOptionsFrom(c *cli.Context, stderr io.Writer, what string) (tableOptions, error) {
	if err := checkOut(c, what); err != nil {
		return tableOptions{}, err
	}
	asJSON, err := exportOutputMode(c)
	if err != nil {
		return tableOptions{}, err
	}
	ec, err := exportConnFrom(c, stderr)
	if err != nil {
		return tableOptions{}, err
	}
	return tableOptions{exportConn: ec, out: c.String("out"), format: c.String("format"), asJSON: asJSON}, nil
}

func exportUsersCommand(ctx context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(append(connFlags(), poolFlags()...), outFlags()...)
	flags = append(flags, outputFlag(),
		&cli.StringFlag{Name: "name", Usage: "only users whose localpart or display name contains `TEXT`"},
		&cli.StringFlag{Name: "user-id", Usage: "only users whose id contains `TEXT`"},
		&cli.BoolFlag{Name: "deactivated", Usage: "include deactivated users"},
		&cli.BoolFlag{Name: "guests", Usage: "include guests (Synapse's default; refused by servers using MAS)"},
		&cli.BoolFlag{Name: "no-guests", Usage: "leave guests out"},
		&cli.BoolFlag{Name: "admins-only", Usage: "only server admins"},
		&cli.StringSliceFlag{Name: "user-type", Usage: "only users of `TYPE` (bot, support; repeat for several)"},
	)
	return &cli.Command{
		Name:  "users",
		Usage: "write the user list as a manifest that apply takes back (plan on it shows every row unchanged)",
		Description: "Pages through the user list, fetches each user's emails, msisdns and external ids, and writes\n" +
			"one row per user. Cells a spreadsheet could take for a formula get a leading ' (read back as written).\n" +
			"An interrupted export resumes from OUT.partial.jsonl when run again.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			o, err := exportUsersOptionsFrom(c, stderr)
			if err != nil {
				return err
			}
			return runExportUsers(ctx, o, stdout, stderr)
		},
	}
}

// exportUsersOptions are export users' flags.
type exportUsersOptions struct {
	tableOptions
	filter synapse.ListFilter
}

func exportUsersOptionsFrom(c *cli.Context, stderr io.Writer) (exportUsersOptions, error) {
	if c.Bool("guests") && c.Bool("no-guests") {
		return exportUsersOptions{}, usageErr("--guests and --no-guests together")
	}
	f := synapse.ListFilter{Name: c.String("name"), UserID: c.String("user-id"), Deactivated: c.Bool("deactivated"),
		AdminsOnly: c.Bool("admins-only"), UserTypes: c.StringSlice("user-type")}
	if c.Bool("guests") || c.Bool("no-guests") {
		g := c.Bool("guests")
		f.Guests = &g
	}
	to, err := tableOptionsFrom(c, stderr, "users")
	if err != nil {
		return exportUsersOptions{}, err
	}
	return exportUsersOptions{tableOptions: to, filter: f}, nil
}

func runExportUsers(ctx context.Context, o exportUsersOptions, stdout, stderr io.Writer) error {
	defer o.conn.close(ctx, stderr)
	client, err := o.connect(ctx, stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, "export users")
	prog.Start(-1, nil)
	res, err := export.Users(ctx, client, export.UsersConfig{Out: o.out, Format: o.format, Stdout: stdout,
		Filter: o.filter, MAS: o.conn.masClient(), Concurrency: o.concurrency, MaxConcurrency: o.maxConcurrency, Progress: prog.Add})
	prog.Finish()
	if err != nil {
		return fmt.Errorf("%w: export users: %w (run the same command again to resume)", pipeline.ErrStopped, err)
	}
	if o.asJSON {
		return writeJSON(stdout, exportSummary{Exported: "users", Count: res.Users, Out: o.out, Fetched: &res.Fetched})
	}
	if o.out != "-" {
		fmt.Fprintf(stderr, "exported %d users to %s (%d fetched now, %d by an interrupted run)\n",
			res.Users, o.out, res.Fetched, res.Users-res.Fetched)
	}
	return nil
}

// exportSummary is what export users, rooms and registration-tokens print
// with --output json.
type exportSummary struct {
	Exported string `json:"exported"` // users, rooms or registration-tokens
	Count    int    `json:"count"`
	Out      string `json:"out"`
	Fetched  *int   `json:"fetched,omitempty"` // users fetched by this run, not an interrupted one
}

// exportOutputMode reads --output for an export whose table may go to
// stdout: with --out - the table is stdout, so the summary cannot be.
func exportOutputMode(c *cli.Context) (asJSON bool, err error) {
	asJSON, err = outputMode(c)
	if err == nil && asJSON && c.String("out") == "-" {
		return false, usageErr("export %s: --out - writes the table to stdout: give --out FILE for --output json", c.Command.Name)
	}
	return asJSON, err
}
