package main

import (
	"context"
	"io"
	"slices"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp(context.Background(), context.Background(), nil, io.Discard, io.Discard)
	for _, c := range []struct{ in, want []string }{
		{[]string{"apply", "m.csv", "--journal", "j", "--concurrency", "3"}, []string{"apply", "--journal", "j", "--concurrency", "3", "m.csv"}},
		{[]string{"apply", "m.csv", "--list", "--rate=5"}, []string{"apply", "--list", "--rate=5", "m.csv"}},
		{[]string{"apply", "--journal", "j", "m.csv"}, []string{"apply", "--journal", "j", "m.csv"}},
		{[]string{"journal", "summary", "j", "-o", "json"}, []string{"journal", "summary", "-o", "json", "j"}},
		{[]string{"validate", "--", "-odd.csv"}, []string{"validate", "--", "-odd.csv"}},
		{[]string{"--help"}, []string{"--help"}},
	} {
		got := reorderArgs(app, append([]string{"synbatch"}, c.in...))[1:]
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
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
