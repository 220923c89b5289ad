package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/pipeline"
)

func exportTokensCommand(ctx context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(append(connFlags(), poolFlags()...), outFlags()...)
	flags = append(flags, outputFlag())
	return &cli.Command{
		Name:  "registration-tokens",
		Usage: "write the registration tokens as a manifest of registration-token rows",
		Description: "Lists every registration token, valid or not, with uses_allowed, expiry_time (unix ms),\n" +
			"pending and completed registrations; on a server whose accounts live in MAS, revoked tokens\n" +
			"too, with revoked (true or false). apply takes the file back: plan on it shows every row\n" +
			"unchanged. The tokens let anyone register: the file is created 0600.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			o, err := tableOptionsFrom(c, stderr, "registration-tokens")
			if err != nil {
				return err
			}
			return runExportTokens(ctx, o, stdout, stderr)
		},
	}
}

// runExportTokens is export registration-tokens: its options are a table
// export's, with no flag of its own.
func runExportTokens(ctx context.Context, o tableOptions, stdout, stderr io.Writer) error {
	defer o.conn.close(ctx, stderr)
	client, err := o.connect(ctx, stderr)
	if err != nil {
		return err
	}
	n, err := export.RegistrationTokens(ctx, client, export.TokensConfig{Out: o.out, Format: o.format, Stdout: stdout, MAS: o.conn.masClient()})
	if err != nil {
		return fmt.Errorf("%w: export registration-tokens: %w", pipeline.ErrStopped, err)
	}
	if o.asJSON {
		return writeJSON(stdout, exportSummary{Exported: "registration-tokens", Count: n, Out: o.out})
	}
	if o.out != "-" {
		fmt.Fprintf(stderr, "exported %d registration tokens to %s\n", n, o.out)
	}
	return nil
}
