package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHelpExamplesUseRealFlags: every flag a worked example passes is a
// flag of the command it runs, so the help never teaches a typo.
func TestHelpExamplesUseRealFlags(t *testing.T) {
	t.Parallel()
	app := newApp(context.Background(), context.Background(), strings.NewReader(""), io.Discard, io.Discard)
	var walk func(cmds []*cli.Command, parent string)
	seen := 0
	walk = func(cmds []*cli.Command, parent string) {
		for _, c := range cmds {
			path := strings.TrimSpace(parent + " " + c.Name)
			walk(c.Subcommands, path)
			for _, line := range strings.Split(commandExamples(path), "\n") {
				words := strings.Fields(line)
				if len(words) < 2 || words[0] != "synbatch" {
					continue
				}
				seen++
				if got := strings.Join(words[1:1+len(strings.Fields(path))], " "); got != path {
					t.Errorf("%s: example runs %q: %s", path, got, line)
				}
				for _, w := range words {
					if slices.Contains([]string{"|", ">", "#"}, w) {
						break
					}
					if !strings.HasPrefix(w, "-") || w == "-" {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
					if !slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }) {
						t.Errorf("%s: example passes %s, which is no flag of it: %s", path, w, line)
					}
				}
			}
		}
	}
	walk(app.Commands, "")
	if seen < 15 {
		t.Errorf("%d worked examples, want two or three per command", seen)
	}
}

// TestEveryFlagHasACategory: apply's flags, and every other command's that
// takes any of the shared ones, are grouped, none left in a flat list.
func TestEveryFlagHasACategory(t *testing.T) {
	t.Parallel()
	app := newApp(context.Background(), context.Background(), strings.NewReader(""), io.Discard, io.Discard)
	var walk func(cmds []*cli.Command, parent string)
	walk = func(cmds []*cli.Command, parent string) {
		for _, c := range cmds {
			path := strings.TrimSpace(parent + " " + c.Name)
			walk(c.Subcommands, path)
			for _, f := range c.Flags {
				cf, ok := f.(cli.CategorizableFlag)
				if !ok || cf.GetCategory() == "" {
					t.Errorf("%s: --%s has no help category", path, f.Names()[0])
				}
			}
		}
	}
	walk(app.Commands, "")
}
