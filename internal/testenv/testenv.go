// Package testenv gives a test binary a home of its own: the results of a
// test must not depend on the config file, token or server of whoever runs
// it (a developer's ~/.config/synbatch.yaml with a map: once failed the
// README's HR guide test).
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// keep are the SYNBATCH_ variables that steer the tests themselves (what
// CI requires, where artifacts go, a child test's input), not synbatch.
func keep(name string) bool {
	switch name {
	case "SYNBATCH_ARTIFACTS", "SYNBATCH_READ_BOMB", "SYNBATCH_WRITE_BOMBS":
		return true
	}
	return strings.HasPrefix(name, "SYNBATCH_REQUIRE_")
}

// Isolate points HOME and the XDG config directory at a new empty
// directory and unsets every SYNBATCH_ variable that synbatch reads; the
// function it returns removes the directory. Go's own caches stay where
// they were, so a test that builds the binary does not start cold. Call it
// from TestMain, before m.Run.
func Isolate() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "synbatch-test-home-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	set := map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
	}
	if os.Getenv("GOCACHE") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			set["GOCACHE"] = filepath.Join(d, "go-build")
		}
	}
	if os.Getenv("GOPATH") == "" {
		if h, err := os.UserHomeDir(); err == nil {
			set["GOPATH"] = filepath.Join(h, "go")
		}
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SYNBATCH_") && !keep(name) {
			os.Unsetenv(name)
		}
	}
	for k, v := range set {
		if err := os.MkdirAll(v, 0o700); err != nil && k != "GOCACHE" && k != "GOPATH" {
			cleanup()
			return nil, err
		}
		os.Setenv(k, v)
	}
	return cleanup, nil
}

// M is what TestMain runs: *testing.M.
type M interface{ Run() int }

// Wrap returns m with Isolate run before its tests and the directory
// removed after. A package's TestMain is os.Exit(testenv.Wrap(m).Run());
// with testscript, testscript.Main(testenv.Wrap(m), …), so that a command
// the test binary runs as (a child with the script's env) is left alone.
func Wrap(m M) M { return isolated{m} }

type isolated struct{ m M }

func (i isolated) Run() int {
	cleanup, err := Isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 2
	}
	defer cleanup()
	return i.m.Run()
}
