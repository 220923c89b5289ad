package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError turns urfave/cli's parse error into an exit-2 error, with the
// nearest flag of the command when the one given is unknown:
// "unknown flag --on-exist: did you mean --on-exists?".
func usageError(c *cli.Context, err error) error {
	const unknown = "flag provided but not defined: "
	msg := err.Error()
	if !strings.HasPrefix(msg, unknown) {
		return &exitError{code: exitUsage, err: err}
	}
	given := strings.TrimLeft(strings.TrimPrefix(msg, unknown), "-")
	flags := c.App.Flags
	if c.Command != nil && c.Command.Name != "" {
		flags = c.Command.Flags
	}
	if s := suggestFlag(given, flags); s != "" {
		return usageErr("unknown flag %s: did you mean %s? (--help lists the flags)", dashes(given), dashes(s))
	}
	return usageErr("unknown flag %s (--help lists the flags)", dashes(given))
}

// suggestFlag names the flag closest to a mistyped one, by the rule
// suggest uses for commands.
func suggestFlag(name string, flags []cli.Flag) string {
	named := make([]*cli.Command, 0, len(flags))
	for _, f := range flags {
		named = append(named, &cli.Command{Name: f.Names()[0], Aliases: f.Names()[1:]})
	}
	return suggest(name, named)
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}
