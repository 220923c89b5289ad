package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/internal/nofollow"
	"github.com/synbatch/synbatch/report"
)

// reportCommand is `synbatch journal report`: one self-contained HTML page
// of one or more journals, for the people who ask what a run did.
func reportCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "write a run report a person can read: one HTML page with no scripts and nothing loaded from elsewhere",
		Description: `What ran, when, against which server and by which synbatch; counts per outcome and per
action; rows per second and rows in flight over time; the failed and uncertain rows with
their errors. For the audit trail of an offboarding or an erasure. The page holds user ids
and error messages: it is written 0600, like the journal.`,
		ArgsUsage: "JOURNAL...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "write the page to `FILE` (.html); - for stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usageErr("journal report: want one or more JOURNAL arguments")
			}
			// Refused before any journal is read: a .pdf holding HTML
			// opens as a broken file years later.
			out := c.String("out")
			if ext := strings.ToLower(filepath.Ext(out)); out != "-" && ext != ".html" && ext != ".htm" {
				return usageErr("journal report: --out %s: the report is an HTML page; give a file ending in .html (print it to PDF from a browser), or - for stdout", out)
			}
			r, err := report.Read(c.Args().Slice()...)
			if err != nil {
				return usageErr("%v", err)
			}
			var page bytes.Buffer
			if err := r.WriteHTML(&page, versionInfo().Version); err != nil {
				return err
			}
			if out == "-" {
				_, err := stdout.Write(page.Bytes())
				return err
			}
			return nofollow.WriteFileAtomic(out, page.Bytes(), 0o600)
		},
	}
}
