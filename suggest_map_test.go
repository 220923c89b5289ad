package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateSuggestsAMapItAccepts: for an unknown header, whatever it
// holds (an =, a quote, a $, spaces), the --map validate suggests, pasted
// into a shell with COLUMN filled in, is accepted and makes the manifest
// valid; a header --map cannot name gets no --map suggestion.
func TestValidateSuggestsAMapItAccepts(t *testing.T) {
	clearSynbatchEnv(t)
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	suggested := regexp.MustCompile(`--map ('(?:[^']|'\\'')*')`)
	for _, header := range []string{"Full name", "name=display", "a=b=c", "it's", "$HOME name", "Name (=)"} {
		t.Run(header, func(t *testing.T) {
			manifest := filepath.Join(t.TempDir(), "m.csv")
			q := `"` + strings.ReplaceAll(header, `"`, `""`) + `"`
			if err := os.WriteFile(manifest, []byte("user_id,"+q+"\nalice,Alice\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"synbatch", "validate", "--server-name", "hs.test", manifest}, strings.NewReader(""), &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitUsage, out.String(), errb.String())
			}
			m := suggested.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("no --map suggested:\n%s", out.String())
			}
			arg := shellUnquote(t, m[1])
			arg = strings.Replace(arg, "=COLUMN", "=displayname", 1)
			out.Reset()
			errb.Reset()
			if code := run([]string{"synbatch", "validate", "--server-name", "hs.test", "--map", arg, manifest}, strings.NewReader(""), &out, &errb); code != 0 {
				t.Fatalf("the suggested --map %s: exit %d\n%s%s", m[1], code, out.String(), errb.String())
			}
		})
	}
	t.Run("no letters", func(t *testing.T) {
		manifest := filepath.Join(t.TempDir(), "m.csv")
		if err := os.WriteFile(manifest, []byte("user_id,==\nalice,x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		run([]string{"synbatch", "validate", "--server-name", "hs.test", manifest}, strings.NewReader(""), &out, &errb)
		if strings.Contains(out.String(), "--map '") || !strings.Contains(out.String(), "rename it in the file") {
			t.Fatalf("want no --map suggested, and the header renamed:\n%s", out.String())
		}
	})
}

// shellUnquote reads one POSIX single-quoted word ('…' joined by \').
func shellUnquote(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, `\'`):
			b.WriteByte('\'')
			s = s[2:]
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			b.WriteString(s[1 : 1+end])
			s = s[end+2:]
		default:
			t.Fatalf("not a quoted word: %q", s)
		}
	}
	return b.String()
}
