// Command bench measures synbatch: client overhead against a no-op server,
// peak memory on large manifests, time to resume a long journal, and users
// per second against the local Synapse. `make bench` runs it and writes
// BENCHMARKS.md; figures are printed as they come, with what produced them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	only := fs.String("only", "overhead,memory,resume,synapse", "benchmarks to run, comma-separated")
	rows := fs.Int("rows", 100_000, "rows for the overhead benchmark")
	memRows := fs.Int("memory-rows", 1_000_000, "CSV rows for the memory benchmark")
	xlsxRows := fs.Int("xlsx-rows", 200_000, "XLSX rows for the memory benchmark")
	resumeRows := fs.Int("resume-rows", 1_000_000, "finished rows in the resume benchmark's journal")
	synapseUsers := fs.Int("synapse-users", 120, "users created per setting against Synapse")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the in-process benchmarks here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "synbatch-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "synbatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build synbatch: %w", err)
	}
	fmt.Fprintf(out, "# Benchmarks\n\nProduced by `make bench` (`go run ./bench`) on %s, %d cores, %s, %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	ctx := context.Background()
	for _, name := range splitComma(*only) {
		var err error
		switch name {
		case "overhead":
			err = benchOverhead(ctx, out, dir, *rows)
		case "memory":
			err = benchMemory(out, dir, bin, *memRows, *xlsxRows)
		case "resume":
			err = benchResume(out, dir, bin, *resumeRows)
		case "synapse":
			err = benchSynapse(out, dir, bin, *synapseUsers)
		default:
			err = fmt.Errorf("unknown benchmark %q", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
