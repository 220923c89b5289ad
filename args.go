package main

import (
	"slices"
	"strings"

	"github.com/synbatch/synbatch/formats"
	"github.com/urfave/cli/v2"
)

// reorderArgs moves a command's flags in front of its arguments, so that
// `synbatch apply users.csv --concurrency 8` works as written: urfave/cli v2
// stops reading flags at the first argument. "--" ends the reordering.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	cmds := app.Commands
	var flags []cli.Flag
	// Walk down to the command named (skipping the app's own flags).
	for len(rest) > 0 {
		a := rest[0]
		if strings.HasPrefix(a, "-") {
			if flags != nil {
				break // the command's own flags: reordered below
			}
			out = append(out, a)
			rest = rest[1:]
			continue
		}
		i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.HasName(a) })
		if i < 0 {
			break
		}
		out = append(out, a)
		rest = rest[1:]
		flags = cmds[i].Flags
		cmds = cmds[i].Subcommands
	}
	if flags == nil {
		return append(out, rest...)
	}
	var front, positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		front = append(front, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue(flags, name) && i+1 < len(rest) {
			i++
			front = append(front, rest[i])
		}
	}
	out = append(out, front...)
	return append(out, positional...)
}

func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		// A generic flag that is a switch to the flag package (--events,
		// which also takes --events=all) takes no separate value.
		if g, ok := f.(*cli.GenericFlag); ok {
			if b, ok := g.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				return false
			}
		}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			return d.TakesValue()
		}
	}
	return false
}

// suggest names the command closest to a mistyped one: within two edits,
// or a prefix of it; "" when none is near enough to be a guess.
func suggest(name string, cmds []*cli.Command) string {
	best, bestDist := "", 3
	for _, c := range cmds {
		for _, n := range c.Names() {
			d := formats.EditDistance(name, n)
			if strings.HasPrefix(n, name) && len(name) >= 2 {
				d = min(d, 1)
			}
			if d < bestDist {
				best, bestDist = n, d
			}
		}
	}
	return best
}
