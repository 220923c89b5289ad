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
	// sends the same three.
	client, err := synapse.New(synapse.Config{Server: srv.url, Token: "t", MaxConns: conc})
	if err != nil {
		return err
	}
	src := pipeline.Source{Path: manifest, Parse: jobs.ParseOptions{File: manifest, ServerName: "bench.test"}}
	start := time.Now()
	checked, err := pipeline.Validate(src)
	if err != nil {
		return err
	}
	st, err := pipeline.Apply(ctx, ctx, client, pipeline.Config{Source: src, Checked: checked,
		Journal: filepath.Join(dir, "overhead.journal"), Header: journal.Header{Tool: "bench"}, Concurrency: conc})
	if err != nil {
		return err
	}
	synbatch := time.Since(start)
	if st.Outcomes["done"] != rows {
		return fmt.Errorf("apply: %+v", st.Outcomes)
	}

	bare, err := bareLoop(srv.url, rows, conc)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "## 1. Client overhead\n\n`go run ./bench -only overhead -rows %d`: apply of %d rows (user_id, displayname, emails: a GET of the user, a GET of the email's owner and a PUT each) against a local no-op server, journal on, %d workers, no rate limit; then a bare Go loop sending the same requests with the same concurrency to the same server.\n\n", rows, rows, conc)
	fmt.Fprintf(out, "| | time | rows/s |\n| --- | --- | --- |\n")
	fmt.Fprintf(out, "| synbatch apply (validate + apply + journal) | %.2fs | %.0f |\n", synbatch.Seconds(), float64(rows)/synbatch.Seconds())
	fmt.Fprintf(out, "| bare loop | %.2fs | %.0f |\n", bare.Seconds(), float64(rows)/bare.Seconds())
	fmt.Fprintf(out, "\nRatio (synbatch time / bare loop time): **%.2fx** (goal: within 1.25x).\n\n", synbatch.Seconds()/bare.Seconds())
	return nil
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
