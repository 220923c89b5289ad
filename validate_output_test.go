package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// steadyManifest writes a manifest with problems of several kinds: an
// unknown header, a column every row lacks (under an unknown header), rows
// carrying several columns their action does not read (one map-ordered
// problem a cell), national phone numbers, bad admin cells, and two users
// sharing an email.
func steadyManifest(t *testing.T, rows int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("user_id,action,displayname,password,admin,msisdns,emails,avatar_url,Department,Cost centre\n")
	for i := range rows {
		switch i % 4 {
		case 0: // delete-devices reads none of these cells
			fmt.Fprintf(&b, "u%d,delete-devices,Name %d,pw-%d-long-enough,true,,,mxc://hs.test/a%d,Sales,%d\n", i, i, i, i, i)
		case 1:
			fmt.Fprintf(&b, "u%d,upsert,Name %d,,maybe,07700 9%05d,,,Sales,%d\n", i, i, i, i)
		case 2:
			fmt.Fprintf(&b, "u%d,upsert,,,,,shared@example.org,,Ops,%d\n", i, i)
		default:
			fmt.Fprintf(&b, "u%d,frobnicate,,,,,,,Ops,%d\n", i, i)
		}
	}
	path := filepath.Join(t.TempDir(), "steady.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func validateOutput(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"synbatch", "validate", "--server-name", "hs.test"}, args...), strings.NewReader(""), &out, &errb); code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitUsage, out.String(), errb.String())
	}
	return out.String() + "--- stderr\n" + errb.String()
}

// TestValidateProblemsInTheSameOrderEveryRun: the same manifest validated
// again and again, with one to eight threads, prints the same bytes, text
// and JSON alike, its problems ordered by row, then column, then message.
func TestValidateProblemsInTheSameOrderEveryRun(t *testing.T) {
	clearSynbatchEnv(t)
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	manifest := steadyManifest(t, 60)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, mode := range [][]string{nil, {"--output", "json"}} {
		args := append(mode, manifest)
		want := validateOutput(t, args...)
		for i := range 40 {
			runtime.GOMAXPROCS(1 + i%8)
			if got := validateOutput(t, args...); got != want {
				t.Fatalf("run %d (GOMAXPROCS %d, %v) differs from the first:\n%s\n--- first\n%s", i, 1+i%8, mode, got, want)
			}
		}
		if mode != nil {
			continue
		}
		// The order is the one promised: row, then column, then message.
		var v validation
		out := validateOutput(t, "--output", "json", manifest)
		if err := json.Unmarshal([]byte(strings.SplitN(out, "--- stderr", 2)[0]), &v); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(v.Problems); i++ {
			a, b := v.Problems[i-1], v.Problems[i]
			if a.Row > b.Row || a.Row == b.Row && (a.Column > b.Column || a.Column == b.Column && a.Message > b.Message) {
				t.Fatalf("problem %d out of order:\n%+v\n%+v", i, a, b)
			}
		}
		if len(v.Problems) < 100 {
			t.Fatalf("want a manifest with many problems, got %d", len(v.Problems))
		}
	}
}

// TestValidateCollapsesProblemsOfOneKind: past the first three problems of
// one kind (one column, one message but for its values), the text output
// prints one line counting the rest and naming the last row; every problem
// is either printed or counted, and --output json lists each one.
func TestValidateCollapsesProblemsOfOneKind(t *testing.T) {
	clearSynbatchEnv(t)
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	manifest := steadyManifest(t, 60)
	text := strings.SplitN(validateOutput(t, manifest), "--- stderr", 2)[0]
	var v validation
	if err := json.Unmarshal([]byte(strings.SplitN(validateOutput(t, "--output", "json", manifest), "--- stderr", 2)[0]), &v); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	national := 0
	for _, p := range v.Problems {
		if strings.Contains(p.Message, "a national number") {
			national++
		}
	}
	// Rows 3, 7, …, 59 hold national numbers: 15 in the JSON, 3 told and
	// one line for the 12 others in the text.
	if national != 15 {
		t.Fatalf("--output json lists %d national numbers, want 15", national)
	}
	var told []string
	for _, l := range lines {
		if strings.Contains(l, "a national number") {
			told = append(told, l)
		}
	}
	if len(told) != 4 || !strings.HasPrefix(told[0], manifest+":3:msisdns: ") ||
		!strings.HasPrefix(told[3], manifest+":15:msisdns: 12 more of this kind, up to row 59 (validate --output json lists each): \"07700 900013\": a national number") {
		t.Fatalf("want three national numbers told and one line counting 12 more up to row 59, got:\n%s", strings.Join(told, "\n"))
	}
	// Every problem is told or counted, none twice.
	count := regexp.MustCompile(`: (\d+) more of this kind, up to row \d+ `)
	sum := 0
	for _, l := range lines {
		if m := count.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			sum += n
		} else {
			sum++
		}
	}
	if sum != len(v.Problems) || len(lines) >= len(v.Problems)/2 {
		t.Fatalf("text tells or counts %d problems in %d lines; JSON lists %d", sum, len(lines), len(v.Problems))
	}
}
