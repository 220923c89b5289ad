package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// windowsPathProblem says why Windows cannot check out path (as git
// ls-files prints it, with /), or "" when it can.
func windowsPathProblem(path string) string {
	for _, part := range strings.Split(path, "/") {
		for _, r := range part {
			if r < 0x20 {
				return fmt.Sprintf("%q has a control character", part)
			}
			if strings.ContainsRune(`<>:"|?*\`, r) {
				return fmt.Sprintf("%q has %q, which Windows refuses in a name", part, r)
			}
		}
		if strings.HasSuffix(part, ".") || strings.HasSuffix(part, " ") {
			return fmt.Sprintf("%q ends in a dot or a space, which Windows drops", part)
		}
		// CON, NUL, COM1… are devices on Windows, with any extension.
		stem := strings.ToUpper(strings.SplitN(part, ".", 2)[0])
		switch stem {
		case "CON", "PRN", "AUX", "NUL",
			"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
			"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
			return fmt.Sprintf("%q is a device name on Windows", part)
		}
	}
	return ""
}

func TestWindowsPathProblem(t *testing.T) {
	t.Parallel()
	for path, bad := range map[string]bool{
		"@admin:synbatch.test/index.csv": true,
		"docs/a?b.md":                    true,
		"testdata/nul.txt":               true,
		"testdata/Com1":                  true,
		"dir./x":                         true,
		"x ":                             true,
		"tab\there":                      true,
		"samples/users.csv":              false,
		"testdata/console.txt":           false,
		"docs/@admin-synbatch.test.md":   false,
	} {
		if got := windowsPathProblem(path) != ""; got != bad {
			t.Errorf("windowsPathProblem(%q) = %q, want a problem: %v", path, windowsPathProblem(path), bad)
		}
	}
}

// TestEveryTrackedPathChecksOutOnWindowsAndMacOS: git on Windows refuses a
// path with a colon (a test artifact named after a user id was committed
// once), and two paths that differ only in case are one file on Windows and
// macOS.
func TestEveryTrackedPathChecksOutOnWindowsAndMacOS(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (a release archive?): %v", err)
	}
	folded := map[string]string{}
	for _, p := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
		path := string(p)
		if why := windowsPathProblem(path); why != "" {
			t.Errorf("%s: %s", path, why)
		}
		// Every prefix: a directory "Docs" beside "docs" collides too.
		parts := strings.Split(path, "/")
		for i := range parts {
			prefix := strings.Join(parts[:i+1], "/")
			key := strings.ToLower(prefix)
			if other, ok := folded[key]; ok && other != prefix {
				t.Errorf("%s and %s differ only in case: one file on Windows and macOS", other, prefix)
			}
			folded[key] = prefix
		}
	}
}
