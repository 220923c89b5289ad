package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/pipeline"
)

func exportTokensCommand(hard context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(append(connFlags(), poolFlags()...), outFlags()...)
	flags = append(flags, outputFlag())
	return &cli.Command{
		Name:  "registration-tokens",
		Usage: "write the registration tokens as a manifest of registration-token rows",
		Description: "Lists every registration token, valid or not, with uses_allowed, expiry_time (unix ms),\n" +
			"pending and completed registrations. apply takes the file back: plan on it shows every row\n" +
			"unchanged. The tokens let anyone register: the file is created 0600.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			out, asJSON, client, cn, err := startExport(hard, c, stderr, "registration-tokens")
			if err != nil {
				return err
			}
			defer cn.close(hard, stderr)
			n, err := export.RegistrationTokens(hard, client, export.TokensConfig{Out: out, Format: c.String("format"), Stdout: stdout, MAS: cn.masClient()})
			if err != nil {
				return fmt.Errorf("%w: export registration-tokens: %w", pipeline.ErrStopped, err)
			}
			if asJSON {
				return writeJSON(stdout, exportSummary{Exported: "registration-tokens", Count: n, Out: out})
			}
			if out != "-" {
				fmt.Fprintf(stderr, "exported %d registration tokens to %s\n", n, out)
			}
			return nil
		},
	}
}
