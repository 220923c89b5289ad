package main

import (
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
		}},
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
	for _, k := range keys {
		fmt.Fprintf(w, " %d %s", s.Outcomes[k], k)
	}
	fmt.Fprintln(w)
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
