package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// Output rules: results go to stdout, as text or with --output json as one
// JSON document; progress, warnings and errors go to stderr.

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "human", Usage: "what stdout gets: human or json", EnvVars: []string{"SYNBATCH_OUTPUT"}}
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
