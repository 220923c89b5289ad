package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// Set at build time by `make build` and `make release` with
// -ldflags "-X main.version=… -X main.commit=…". Empty in a plain
// `go build` or `go install`, where the build info the Go toolchain stamps
// into the binary says the same.
var (
	version string
	commit  string
)

// buildVersion is what `synbatch --version` prints and the journal header
// records.
type buildVersion struct {
	Version  string // v1.2.3, a Go pseudo-version, or "(devel)"
	Commit   string // the full commit id, "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Go       string // go1.26.8
	Platform string // linux/amd64
}

// versionInfo reads the version from the linker flags, or else from the
// build info: `go install github.com/synbatch/synbatch@v1.2.3` stamps
// v1.2.3, and a build in a git checkout stamps a pseudo-version and the
// commit (Go 1.24 and later).
func versionInfo() buildVersion {
	v := buildVersion{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "(devel)"
		}
		return v
	}
	if v.Version == "" && bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if v.Commit == "" {
				v.Commit = s.Value
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// String is the first line of --version, also written to journal headers.
func (v buildVersion) String() string {
	return v.Version
}

// long is the whole --version text: the version, then where it came from.
func (v buildVersion) long(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", name, v.Version)
	c := v.Commit
	if c == "" {
		c = "unknown"
	}
	if v.Modified {
		c += " (modified)"
	}
	fmt.Fprintf(&b, "commit: %s\n", c)
	fmt.Fprintf(&b, "go: %s %s\n", v.Go, v.Platform)
	return b.String()
}

// versionFlag is the app's --version. urfave/cli's own prints only the
// version, through a package variable; this one prints the whole story.
func versionFlag() cli.Flag {
	return &cli.BoolFlag{Name: "version", Usage: "print the version, the commit and the Go version it was built with"}
}

// withVersion runs next unless --version was given.
func withVersion(stdout io.Writer, next cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Bool("version") {
			_, err := io.WriteString(stdout, versionInfo().long(c.App.Name))
			return err
		}
		return next(c)
	}
}
