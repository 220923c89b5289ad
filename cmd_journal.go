package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/journal"
)

func journalCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "journal",
		Usage: "read result journals",
		Subcommands: []*cli.Command{{
			Name:      "summary",
			Usage:     "counts per outcome, and the failed rows with their errors",
			ArgsUsage: "JOURNAL",
			Flags:     []cli.Flag{outputFlag()},
			Action: func(c *cli.Context) error {
				asJSON, err := outputMode(c)
				if err != nil {
					return err
				}
				if c.NArg() != 1 {
					return usageErr("journal summary: want one JOURNAL argument")
				}
				s, err := journal.Summarize(c.Args().First())
				if err != nil {
					return usageErr("%v", err)
				}
				if asJSON {
					return writeJSON(stdout, s)
				}
				printSummary(stdout, s)
				return nil
			},
		}, {
			Name:      "merge",
			Usage:     "one summary of several journals, such as the shards of one manifest; --out also writes them as one journal",
			ArgsUsage: "JOURNAL...",
			Flags: []cli.Flag{outputFlag(),
				&cli.StringFlag{Name: "out", Usage: "write every record of the journals, in order, to the new journal `PATH` (0600)"}},
			Action: func(c *cli.Context) error {
				asJSON, err := outputMode(c)
				if err != nil {
					return err
				}
				if c.NArg() < 1 {
					return usageErr("journal merge: want one or more JOURNAL arguments")
				}
				s, err := journal.SummarizeAll(c.Args().Slice()...)
				if err != nil {
					return usageErr("%v", err)
				}
				if out := c.String("out"); out != "" {
					err := journal.Merge(out, c.Args().Slice())
					if errors.Is(err, journal.ErrMergeOutput) {
						return usageErr("%v", err)
					}
					if err != nil {
						return err
					}
				}
				if asJSON {
					return writeJSON(stdout, s)
				}
				printSummary(stdout, s)
				return nil
			},
		},
			reportCommand(stdout),
		},
	}
}

func printSummary(w io.Writer, s *journal.Summary) {
	fmt.Fprintf(w, "journal %s: %d runs, manifest %s, server %s\n", s.Path, s.Runs, s.Manifest, s.Server)
	keys := make([]string, 0, len(s.Outcomes))
	for k := range s.Outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%d rows:", s.Rows)
	// Done is told as created and updated, as apply's summary tells it.
	if s.Created > 0 {
		fmt.Fprintf(w, " %d created", s.Created)
	}
	if s.Updated > 0 {
		fmt.Fprintf(w, " %d updated", s.Updated)
	}
	for _, k := range keys {
		if k != string(journal.Done) {
			fmt.Fprintf(w, " %d %s", s.Outcomes[k], k)
		}
	}
	fmt.Fprintln(w)
	if e := s.LastRun; e != nil {
		level := fmt.Sprintf("%d rows in flight", e.Concurrency)
		if e.Adaptive {
			level = fmt.Sprintf("adaptive concurrency reached %d rows in flight (%d at the end)", e.ConcurrencyMax, e.Concurrency)
		}
		fmt.Fprintf(w, "last run: %.1fs, %s\n", e.ElapsedS, level)
	}
	if s.Pending > 0 {
		fmt.Fprintf(w, "%d rows had a write sent but no result (the next run settles them)\n", s.Pending)
	}
	for _, r := range s.Failed {
		msg := r.Error
		if msg == "" {
			msg = r.Note
		}
		status := ""
		if r.Status != 0 {
			status = fmt.Sprintf(" [%d %s]", r.Status, r.Errcode)
		}
		fmt.Fprintf(w, "row %d %s %s: %s%s: %s\n", r.Row, r.UserID, r.Action, r.Outcome, status, msg)
	}
}
