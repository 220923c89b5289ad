// Command synbatch does bulk work on a Synapse homeserver through its Admin
// API: it applies CSV, XLSX and JSONL manifests of users with a plan, guards
// and a resumable journal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
)

// Exit codes. Scripts depend on them; they are listed in --help.
const (
	exitOK      = 0 // every row done
	exitFailed  = 1 // some rows failed, each journaled with its reason
	exitUsage   = 2 // usage error or invalid manifest: nothing was sent
	exitStopped = 3 // stopped early: run the same command again to resume
)

const exitHelp = `EXIT CODES:
   0  every row done (done, unchanged or skipped)
   1  some rows failed; each is journaled with its reason
   2  usage error or invalid manifest: nothing was sent
   3  stopped early (interrupted, server unreachable, token refused):
      run the same command again to resume`

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	// A million-row manifest keeps some tens of megabytes live; without a
	// limit the collector lets the heap grow to twice that before it works.
	// A soft limit keeps the footprint near what is live (GOMEMLIMIT wins).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the exit.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	soft, hard, stop := interrupts(stderr)
	defer stop()
	app := newApp(soft, hard, stdin, stdout, stderr)
	app.Metadata = map[string]any{argsKey: args} // for the resume hint
	defer removeStdinBuffer(app)
	err := app.Run(reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "synbatch: %v\n", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, pipeline.ErrInvalid), errors.Is(err, pipeline.ErrJournalMismatch), errors.Is(err, pipeline.ErrMeaningChanged),
		// A journal that is not synbatch's, is damaged or is in use stops
		// the run before its first row: a person must act, nothing was sent.
		errors.Is(err, journal.ErrForeign), errors.Is(err, journal.ErrDamaged), errors.Is(err, journal.ErrLocked):
		return exitUsage
	case errors.Is(err, pipeline.ErrStopped), errors.Is(err, context.Canceled):
		return exitStopped
	}
	return exitFailed
}

// interrupts turns the first SIGINT or SIGTERM into a soft stop (no new
// rows; requests in flight finish and are journaled) and the second into a
// hard one (requests in flight are cancelled and redone on resume). stop
// gives the signals back and ends the listener.
func interrupts(stderr io.Writer) (soft, hard context.Context, stop func()) {
	soft, stopSoft := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ch:
		case <-hard.Done():
			return
		}
		stopSoft() // before the message: whoever reads it finds the stop taken
		fmt.Fprintln(stderr, "\nsynbatch: stopping: finishing the requests in flight (press Ctrl-C again to stop now)")
		select {
		case <-ch:
		case <-hard.Done():
			return
		}
		fmt.Fprintln(stderr, "\nsynbatch: stopping now")
		stopHard()
	}()
	return soft, hard, func() {
		signal.Stop(ch)
		stopHard()
		stopSoft()
		<-done
	}
}

func newApp(soft, hard context.Context, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                  "synbatch",
		Usage:                 "bulk work on a Synapse homeserver through its Admin API",
		Version:               versionInfo().Version,
		HideVersion:           true, // versionFlag prints more
		Flags:                 []cli.Flag{versionFlag()},
		Suggest:               true,
		Reader:                stdin,
		Writer:                stdout,
		ErrWriter:             stderr,
		EnableBashCompletion:  true,
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitHelp + "\n",
		// urfave/cli would call os.Exit itself; only main exits.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		Commands: []*cli.Command{
			validateCommand(soft, stdout, stderr),
			planCommand(soft, stdout, stderr),
			applyCommand(soft, hard, stdin, stdout, stderr),
			exportCommand(soft, hard, stdout, stderr),
			journalCommand(stdout),
			completionCommand(stdout),
			manCommand(stdout),
			completeCommand(stdout),
		},
	}
	app.Action = withVersion(stdout, unknownCommand(app.Commands))
	for _, c := range app.Commands {
		usageErrors(c, c.Name, app.OnUsageError)
		for _, s := range c.Subcommands {
			usageErrors(s, c.Name+" "+s.Name, app.OnUsageError)
		}
	}
	teachHelp(app.Commands, "")
	return app
}

// usageErrors makes every usage mistake with a command an exit-2 error:
// a bad flag, a missing required flag (urfave/cli returns that one past
// OnUsageError) and, for a command of subcommands, an unknown subcommand.
func usageErrors(c *cli.Command, fullName string, onUsage cli.OnUsageErrorFunc) {
	c.OnUsageError, c.UseShortOptionHandling = onUsage, true
	if len(c.Subcommands) > 0 && c.Action == nil {
		c.Action = unknownCommand(c.Subcommands)
	}
	var required []string
	for _, f := range c.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			required = append(required, sf.Name)
		}
	}
	if len(required) == 0 {
		return
	}
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		for _, name := range required {
			if !ctx.IsSet(name) {
				return usageErr("%s: --%s is required", fullName, name)
			}
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
}

// unknownCommand is the action of the app, and of a command of
// subcommands, when what follows names none of cmds.
func unknownCommand(cmds []*cli.Command) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowSubcommandHelp(c)
		}
		name := c.Args().First()
		if s := suggest(name, cmds); s != "" {
			return usageErr("unknown command %q: did you mean %s? (--help lists the commands)", name, s)
		}
		return usageErr("unknown command %q (--help lists the commands)", name)
	}
}
