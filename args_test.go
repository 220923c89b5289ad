package main

import (
	"context"
	"io"
	"slices"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	t.Parallel()
	app := newApp(context.Background(), context.Background(), nil, io.Discard, io.Discard)
	for _, c := range []struct{ in, want []string }{
		{[]string{"apply", "m.csv", "--journal", "j", "--concurrency", "3"}, []string{"apply", "--journal", "j", "--concurrency", "3", "m.csv"}},
		{[]string{"apply", "m.csv", "--list", "--rate=5"}, []string{"apply", "--list", "--rate=5", "m.csv"}},
		{[]string{"apply", "--journal", "j", "m.csv"}, []string{"apply", "--journal", "j", "m.csv"}},
		{[]string{"journal", "summary", "j", "-o", "json"}, []string{"journal", "summary", "-o", "json", "j"}},
		{[]string{"validate", "--", "-odd.csv"}, []string{"validate", "--", "-odd.csv"}},
		{[]string{"--help"}, []string{"--help"}},
		// --events is a switch: the user after it stays a user.
		{[]string{"export", "data", "@u:hs", "--events", "@v:hs", "--out", "o"}, []string{"export", "data", "--events", "--out", "o", "@u:hs", "@v:hs"}},
		{[]string{"export", "data", "@u:hs", "--events=all", "--out", "o"}, []string{"export", "data", "--events=all", "--out", "o", "@u:hs"}},
	} {
		got := reorderArgs(app, append([]string{"synbatch"}, c.in...))[1:]
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	app := newApp(context.Background(), context.Background(), nil, io.Discard, io.Discard)
	for _, c := range []struct{ in, want string }{
		{"aply", "apply"},
		{"appyl", "apply"},
		{"valdate", "validate"},
		{"pla", "plan"},
		{"exprot", "export"},
		{"jour", "journal"},
		{"frobnicate", ""},
		{"x", ""},
	} {
		if got := suggest(c.in, app.Commands); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
