package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
	"github.com/synbatch/synbatch/synapse"
)

// writeCSV writes n user rows (user_id, displayname, emails) to path.
func writeCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "user_id,displayname,emails")
	for i := range n {
		fmt.Fprintf(w, "user%d,User %d,user%d@example.org\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchOverhead compares apply (validation, pool, journal) with a bare loop
// sending the same requests at the same concurrency to the same server.
func benchOverhead(ctx context.Context, out io.Writer, dir string, rows int) error {
	const conc = 16
	srv, err := startNoop()
	if err != nil {
		return err
	}
	defer srv.srv.Close()
	manifest := filepath.Join(dir, "overhead.csv")
	if err := writeCSV(manifest, rows); err != nil {
		return err
	}
	// The rows have emails, so apply looks each one's owner up: three
	// requests a row (GET user, GET threepid owner, PUT); the bare loop
	// sends the same three. This machine is noisy, so the two alternate,
	// three times, and the medians are compared.
	const rounds = 3
	var syn, bare []time.Duration
	for round := range rounds {
		d, err := applyOnce(ctx, srv.url, manifest, filepath.Join(dir, fmt.Sprintf("overhead-%d.journal", round)), rows, conc)
		if err != nil {
			return err
		}
		syn = append(syn, d)
		if d, err = bareLoop(srv.url, rows, conc); err != nil {
			return err
		}
		bare = append(bare, d)
	}
	synbatch, bareMedian := median(syn), median(bare)
	fmt.Fprintf(out, "## 1. Client overhead\n\n`go run ./bench -only overhead -rows %d`: apply of %d rows (user_id, displayname, emails: a GET of the user, a GET of the email's owner and a PUT each) against a local no-op server, journal on, %d workers, no rate limit, alternating three times with a bare Go loop sending the same requests with the same concurrency to the same server.\n\n", rows, rows, conc)
	fmt.Fprintf(out, "| | time | rows/s |\n| --- | --- | --- |\n")
	fmt.Fprintf(out, "| synbatch apply (validate + apply + journal), median of %d | %.2fs | %.0f |\n", rounds, synbatch.Seconds(), float64(rows)/synbatch.Seconds())
	fmt.Fprintf(out, "| bare loop, median of %d | %.2fs | %.0f |\n", rounds, bareMedian.Seconds(), float64(rows)/bareMedian.Seconds())
	fmt.Fprintf(out, "\nRuns, alternating: synbatch %v; bare loop %v.\n", roundTimes(syn), roundTimes(bare))
	fmt.Fprintf(out, "\nRatio of the medians (synbatch time / bare loop time): **%.2fx** (goal: within 1.25x).\n\n", synbatch.Seconds()/bareMedian.Seconds())
	return nil
}

// applyOnce validates and applies the manifest into a new journal.
func applyOnce(ctx context.Context, url, manifest, jpath string, rows, conc int) (time.Duration, error) {
	client, err := synapse.New(synapse.Config{Server: url, Token: "t", MaxConns: conc})
	if err != nil {
		return 0, err
	}
	src := pipeline.Source{Path: manifest, Parse: jobs.ParseOptions{File: manifest, ServerName: "bench.test"}}
	start := time.Now()
	checked, err := pipeline.Validate(src)
	if err != nil {
		return 0, err
	}
	st, err := pipeline.Apply(ctx, ctx, client, pipeline.Config{Source: src, Checked: checked,
		Journal: jpath, Header: journal.Header{Tool: "bench"}, Concurrency: conc})
	if err != nil {
		return 0, err
	}
	if st.Outcomes["done"] != rows {
		return 0, fmt.Errorf("apply: %+v", st.Outcomes)
	}
	return time.Since(start), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundTimes(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%.1fs", x.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func bareLoop(base string, rows, conc int) (time.Duration, error) {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2}
	c := &http.Client{Transport: tr}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	do := func(method, url string, body []byte) {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, r)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := c.Do(req)
		if err != nil {
			firstErr.CompareAndSwap(nil, err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(rows) {
					return
				}
				id := fmt.Sprintf("@user%d:bench.test", i)
				do(http.MethodGet, base+"/_synapse/admin/v2/users/"+id, nil)
				do(http.MethodGet, base+fmt.Sprintf("/_synapse/admin/v1/threepid/email/users/user%d@example.org", i), nil)
				do(http.MethodPut, base+"/_synapse/admin/v2/users/"+id, []byte(fmt.Sprintf(`{"displayname":"User %d","threepids":[{"medium":"email","address":"user%d@example.org"}]}`, i, i)))
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return time.Since(start), nil
}
