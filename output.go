package main

import (
	"encoding/json"
	"fmt"
	"github.com/synbatch/synbatch/formats"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/urfave/cli/v2"
)

// Output rules: results go to stdout, as text or with --output json as one
// JSON document; progress, warnings and errors go to stderr.

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "human", Usage: "what stdout gets: `human|json`", EnvVars: []string{"SYNBATCH_OUTPUT"}}
}

func outputMode(c *cli.Context) (json bool, err error) {
	switch c.String("output") {
	case "human", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usageErr("--output %q: want human or json", c.String("output"))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// newProgress shows progress on stderr: a bar when it is a terminal, a line
// every few seconds otherwise.
func newProgress(stderr io.Writer, label string) *progress {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return newProgressTo(stderr, tty, label)
}

// outFlags are the output flags of the table exports (users, rooms).
func outFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "out", Required: true, Usage: "output `FILE`: .csv, .tsv, .xlsx, .ods or .jsonl; - for stdout"},
		&cli.StringFlag{Name: "format", Value: "csv", Usage: "with --out -: `csv|jsonl`"},
	}
}

// checkOut checks a table export's arguments and --out/--format.
func checkOut(c *cli.Context, what string) error {
	if c.NArg() != 0 {
		return usageErr("export %s takes no arguments (did you mean --out %s?)", what, c.Args().First())
	}
	if c.String("out") == "-" && c.String("format") != "csv" && c.String("format") != "jsonl" {
		return usageErr("--format %q: want csv or jsonl", c.String("format"))
	}
	if out := c.String("out"); out != "-" {
		if err := formats.CheckOut(out); err != nil {
			return usageErr("export %s: %v (nothing was fetched)", what, err)
		}
	}
	return nil
}
