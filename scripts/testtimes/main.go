// Command testtimes prints the slowest tests of a `go test -json` stream:
// CI keeps each tier's stream, and this says where its minutes went.
//
//	go run ./scripts/testtimes [-n 15] FILE.json...
//
// It prints the output of every failed test first (the JSON stream is what
// CI keeps; a person reads this), and exits 1 when a test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is the part of a test2json line this reads.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type timing struct {
	name    string
	seconds float64
	action  string
}

func main() {
	n := flag.Int("n", 15, "how many of the slowest tests to print")
	flag.Parse()
	var all []timing
	failed := false
	for _, path := range flag.Args() {
		t, f, err := readFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testtimes:", err)
			os.Exit(1)
		}
		all = append(all, t...)
		failed = failed || f
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seconds > all[j].seconds })
	var sum float64
	for _, t := range all {
		sum += t.seconds
	}
	fmt.Printf("%d top-level tests, %.0f s of test time in all; the slowest:\n", len(all), sum)
	for _, t := range all[:min(*n, len(all))] {
		fmt.Printf("%8.1f s  %-4s %s\n", t.seconds, t.action, t.name)
	}
	if failed {
		os.Exit(1)
	}
}

func readFile(path string) ([]timing, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	return read(f, os.Stdout, path)
}

// read keeps the pass, fail and skip lines of top-level tests (subtests are
// inside their parent's time) and writes the output of what failed to w.
func read(r io.Reader, w io.Writer, path string) (times []timing, failed bool, err error) {
	output := map[string]*strings.Builder{} // by package and test
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if !strings.HasPrefix(sc.Text(), "{") {
			fmt.Fprintln(w, sc.Text()) // go test's own lines, such as a build failure
			continue
		}
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, false, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
			continue
		case "fail":
			failed = true
			if b := output[key]; b != nil {
				fmt.Fprintf(w, "--- %s %s failed:\n%s", e.Package, e.Test, b.String())
			}
		}
		if e.Action != "fail" && e.Action != "build-fail" {
			delete(output, key)
		}
		if e.Test == "" || strings.Contains(e.Test, "/") {
			continue
		}
		switch e.Action {
		case "pass", "fail", "skip":
			times = append(times, timing{e.Package[strings.LastIndex(e.Package, "/")+1:] + "." + e.Test, e.Elapsed, e.Action})
		}
	}
	return times, failed, sc.Err()
}
