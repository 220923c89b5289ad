// Command bench measures synbatch: client overhead against a no-op server,
// peak memory on large manifests, time to resume a long journal, and users
// per second against the local Synapses (SQLite and PostgreSQL, beside synadm),
// and a projection to a million users. `make bench` runs it and writes
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
	"strings"
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
	resumeRuns := fs.Int("resume-runs", 3, "resumes of the same journal (each from a fresh copy); the median is reported")
	synapseUsers := fs.Int("synapse-users", 120, "users created per run of a setting against Synapse")
	synapseRounds := fs.Int("synapse-rounds", 3, "rounds of the concurrency sweep against Synapse (each setting once per round)")
	synapseDB := fs.String("synapse-db", "sqlite,postgres", "databases of the real-Synapse benchmark (scripts/synapse --db NAME up), comma-separated")
	synadmUsers := fs.Int("synadm-users", 40, "users created and renamed by each of synadm's loop, synadm under xargs and synbatch")
	listUsers := fs.Int("list-users", 5000, "users in the synadm user list / synbatch export users comparison")
	detailsSample := fs.Int("details-sample", 100, "synadm user details processes timed (and scaled to -list-users)")
	noSynadm := fs.Bool("no-synadm", false, "leave synadm out of the real-Synapse benchmark")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the in-process benchmarks here")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the in-process benchmarks here (one sample per 4 KB allocated)")
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
	if *memprofile != "" {
		runtime.MemProfileRate = 1 << 12 // finer than the default: small per-row allocations count
		defer func() {
			f, err := os.Create(*memprofile)
			if err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
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
	fmt.Fprintf(out, "Load average when the run started: %s. The machine is shared: a load above the core count means other work competed with the benchmark, and its figures vary from run to run by more than the differences between neighbouring settings.\n\n", loadAvg())
	ctx := context.Background()
	for _, name := range splitComma(*only) {
		var err error
		switch name {
		case "overhead":
			err = benchOverhead(ctx, out, dir, *rows)
		case "memory":
			err = benchMemory(out, dir, bin, *memRows, *xlsxRows)
		case "resume":
			err = benchResume(out, dir, bin, *resumeRows, max(*resumeRuns, 1))
		case "synapse":
			err = benchSynapse(out, dir, bin, synapseOpts{dbs: splitComma(*synapseDB), users: *synapseUsers, rounds: max(*synapseRounds, 1),
				synadmUsers: *synadmUsers, listUsers: *listUsers, detailsSample: min(*detailsSample, *listUsers), skipSynadm: *noSynadm})
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

// loadAvg is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ") + " (1, 5, 15 minutes)"
}
