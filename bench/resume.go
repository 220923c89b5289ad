package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
)

// benchResume writes a journal in which every row of a manifest but the
// last is finished, resumes it runs times (each from a copy of it as
// written), and times how long the first new row takes to reach the server.
func benchResume(out io.Writer, dir, bin string, finished, runs int) error {
	srv, err := startNoop()
	if err != nil {
		return err
	}
	defer srv.srv.Close()
	env, err := noopEnv(dir, srv.url)
	if err != nil {
		return err
	}
	manifest := filepath.Join(dir, "resume.csv")
	if err := writeCSV(manifest, finished+1); err != nil {
		return err
	}
	jpath := manifest + ".journal.jsonl"
	fmt.Fprintf(out, "## 3. Resume\n\n`go run ./bench -only resume -resume-rows %d -resume-runs %d`: a journal with %d finished rows, and a manifest with one row more; `synbatch apply` resumes it against the no-op server, %d times, each from a copy of the journal as written. The journal's run recorded its validation (a manifest whose bytes and options match reuses it), or did not (the resume validates every row, as after an edit of the manifest or with --sync).\n\n", finished, runs, finished, runs)
	fmt.Fprintf(out, "| validation | time to the first new row (median) | whole run (median) | runs: first new row | runs: whole run |\n| --- | --- | --- | --- | --- |\n")
	for _, recorded := range []bool{true, false} {
		written := jpath + ".written"
		if err := finishedJournal(manifest, written, finished, recorded); err != nil {
			return err
		}
		firsts, totals, err := resumeRuns(srv, env, bin, manifest, written, jpath, runs)
		if err != nil {
			return err
		}
		how := "recorded in the journal, reused"
		if !recorded {
			how = "not recorded: validated again"
		}
		fmt.Fprintf(out, "| %s | %.2fs | %.2fs | %v | %v |\n", how, median(firsts).Seconds(), median(totals).Seconds(), roundTimes(firsts), roundTimes(totals))
	}
	fmt.Fprintf(out, "\nGoal: under 3 seconds. The time covers starting the process, hashing the manifest, loading the journal, validating the manifest (when not recorded), reading its rows' users for the run lock (when the validation was reused: validation keeps them otherwise) and reading the manifest up to its last row.\n\n")
	return nil
}

// resumeRuns resumes the journal written (copied to jpath) runs times and
// times the first new row's write and the whole run.
func resumeRuns(srv *noop, env []string, bin, manifest, written, jpath string, runs int) (firsts, totals []time.Duration, _ error) {
	for range runs {
		// A resume appends to its journal: each one starts from the journal
		// as written, with its one row still to do.
		if err := copyFile(written, jpath); err != nil {
			return nil, nil, err
		}
		srv.puts.Store(0)
		cmd := exec.Command(bin, "apply", manifest, "--rate", "0", "--output", "json")
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("apply: %w: %s", err, b)
		}
		total := time.Since(start)
		if srv.puts.Load() != 1 {
			return nil, nil, fmt.Errorf("resume sent %d writes, want 1", srv.puts.Load())
		}
		firsts = append(firsts, time.Unix(0, srv.firstPut.Load()).Sub(start))
		totals = append(totals, total)
	}
	return firsts, totals, nil
}

// copyFile copies src to dst (0600), replacing it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// finishedJournal journals the first n rows of manifest as done, with the
// keys apply computes; recorded keeps the run's validation in its header.
func finishedJournal(manifest, jpath string, n int, recorded bool) error {
	r, err := formats.Open(manifest, formats.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(jpath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	sum, _ := fileSHA(manifest)
	// As the run that wrote the journal would: its validation recorded for
	// the same bytes and the options the command line gives.
	src := pipeline.Source{Path: manifest, Shards: 1, Parse: jobs.ParseOptions{File: manifest, ServerName: "bench.test",
		DefaultAction: jobs.Upsert, MatchBy: "user_id"}}
	h := journal.Header{Type: "run", Tool: "synbatch", Manifest: manifest, ManifestSHA256: sum, Started: time.Now().UTC()}
	if recorded {
		checked, err := pipeline.Validate(src)
		if err != nil {
			return err
		}
		h.Validated = checked.Record(pipeline.Fingerprint(src, sum))
	}
	hb, _ := json.Marshal(h)
	w.Write(append(hb, '\n'))
	opt := src.Parse
	for i := 0; i < n; i++ {
		row, err := r.Next()
		if err != nil {
			return err
		}
		j, probs := jobs.Parse(row, opt)
		if len(probs) > 0 {
			return probs[0]
		}
		b, _ := json.Marshal(journal.Record{Type: "row", Row: row.Num, Key: j.Key, UserID: j.UserID, Action: string(j.Action),
			Outcome: journal.Done, Status: 201, Changed: []string{"displayname", "threepids"}, Attempts: 1, DurationMS: 3, Time: time.Now().UnixMilli()})
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
