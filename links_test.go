package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// mdLink is an inline Markdown link or image: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchorOf is the anchor GitHub gives a heading: lower case, spaces to
// hyphens, punctuation other than hyphens and underscores dropped.
func anchorOf(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are the heading anchors of a Markdown file, with GitHub's -1, -2
// for repeated headings; headings inside code blocks do not count.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(h, " ") {
			continue
		}
		a := anchorOf(strings.ReplaceAll(h, "`", ""))
		if n := seen[a]; n > 0 {
			out[a+"-"+itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestEveryDocLinkResolves: every relative link in README.md,
// RELIABILITY.md and docs/*.md names a file that exists and, with a
// #fragment, a heading in it.
func TestEveryDocLinkResolves(t *testing.T) {
	t.Parallel()
	pages, _ := filepath.Glob("docs/*.md")
	pages = append([]string{"README.md", "RELIABILITY.md"}, pages...)
	texts := map[string]string{}
	read := func(p string) (string, bool) {
		if s, ok := texts[p]; ok {
			return s, true
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", false
		}
		texts[p] = string(b)
		return texts[p], true
	}
	for _, page := range pages {
		text, ok := read(page)
		if !ok {
			t.Errorf("%s: missing", page)
			continue
		}
		for i, line := range strings.Split(text, "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, frag, _ := strings.Cut(target, "#")
				path := page
				if file != "" {
					path = filepath.Join(filepath.Dir(page), file)
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link %s: no file %s", page, i+1, target, path)
					continue
				}
				if frag == "" || !strings.HasSuffix(path, ".md") {
					continue
				}
				dest, _ := read(path)
				if !anchors(dest)[frag] {
					t.Errorf("%s:%d: link %s: no heading #%s in %s", page, i+1, target, frag, path)
				}
			}
		}
	}
}

func TestAnchorOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Onboarding from an HR export": "onboarding-from-an-hr-export",
		"Exit codes (and what to do)":  "exit-codes-and-what-to-do",
		"`--on-exists` and merge":      "--on-exists-and-merge",
		"Résumé, step 2":               "résumé-step-2",
	} {
		if got := anchorOf(strings.ReplaceAll(in, "`", "")); got != want {
			t.Errorf("anchorOf(%q) = %q, want %q", in, got, want)
		}
	}
}
