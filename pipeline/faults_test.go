package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synbatch/synbatch/journal"
)

// manifestOf writes n rows of users prefix0..prefixN-1 with a display name.
func (r *rig) manifestOf(prefix string, n int) Source {
	var b strings.Builder
	b.WriteString("user_id,displayname\n")
	for i := range n {
		fmt.Fprintf(&b, "%s%d,Name %d\n", prefix, i, i)
	}
	return r.manifest(prefix+".csv", b.String())
}

// wantAccounts checks, on the fake server itself, that manifestOf(prefix,
// n)'s accounts all exist with their display names: the server's state,
// not the run's own count of what it did.
func (r *rig) wantAccounts(prefix string, n int) {
	r.t.Helper()
	missing := 0
	for i := range n {
		id := fmt.Sprintf("@%s%d:%s", prefix, i, r.fake.Name)
		u := r.fake.User(id)
		switch {
		case u == nil:
			missing++
			if missing <= 5 {
				r.t.Errorf("%s is not on the server", id)
			}
		case u.Displayname != fmt.Sprintf("Name %d", i):
			r.t.Errorf("%s: display name %q on the server, want %q", id, u.Displayname, fmt.Sprintf("Name %d", i))
		}
	}
	if missing > 0 {
		r.t.Fatalf("%d of %d accounts are not on the server", missing, n)
	}
}

// reset answers by closing the connection without a response, as a
// crashed server or a proxy dropping it would.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestServerAwayThenBackCompletesOnItsOwn(t *testing.T) {
	r := newRig(t)
	var writes atomic.Int64
	var downUntil atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if until := downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
			reset(w)
			return true
		}
		if req.Method == http.MethodPut && writes.Add(1) == 20 {
			downUntil.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
			reset(w)
			return true
		}
		return false
	}
	src := r.manifestOf("away", 100)
	st, err := r.apply(src, filepath.Join(r.dir, "j"), func(c *Config) { c.DownAfter = 3 })
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["done"] != 100 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	for i := range 100 {
		if u := r.fake.User(fmt.Sprintf("@away%d:hs.test", i)); u == nil || u.Displayname != fmt.Sprintf("Name %d", i) {
			t.Fatalf("row %d not applied: %+v", i, u)
		}
	}
}

func TestServerAwayTooLongStopsWithoutFailingRows(t *testing.T) {
	r := newRig(t)
	var n atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if n.Add(1) > 30 {
			reset(w)
			return true
		}
		return false
	}
	src := r.manifestOf("gone", 60)
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(src, jp, func(c *Config) { c.DownAfter = 3; c.DownLimit = 300 * time.Millisecond })
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want a stop because the server is unreachable", err)
	}
	if st.Outcomes["failed"] != 0 || st.NotDone == 0 {
		t.Fatalf("rows must be left not done, never failed: %+v", st)
	}
	// The server is back: the same command finishes the job.
	r.fake.Fault = nil
	st, err = r.apply(src, jp, nil)
	if err != nil || st.Resumed+st.Outcomes["done"]+st.Outcomes["unchanged"] != 60 {
		t.Fatalf("resume: %v %+v", err, st)
	}
}

func Test503AndResetsOnAShareOfWritesAllSucceed(t *testing.T) {
	r := newRig(t)
	var writes atomic.Int64
	var seen sync.Map
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != http.MethodPut {
			return false
		}
		writes.Add(1)
		// A third of the rows get a 503 on their first write, a third a
		// reset (before the fake applies it), a third no fault.
		var i int
		fmt.Sscanf(req.URL.Path, "/_synapse/admin/v2/users/@flaky%d:", &i)
		if _, again := seen.LoadOrStore(i, true); again {
			return false
		}
		switch i % 3 {
		case 0:
			w.WriteHeader(503)
			return true
		case 1:
			reset(w)
			return true
		}
		return false
	}
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(r.manifestOf("flaky", 100), jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["done"] != 100 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	r.wantAccounts("flaky", 100)
	// Exactly one retry for each faulted row: 100 writes plus 67, counted
	// where they arrive.
	if w := writes.Load(); w != 167 {
		t.Fatalf("%d writes for 100 rows, want 167", w)
	}
}

// Test429HintsInEveryFormAreHonoured: after a 429 carrying a wait hint in any
// of its forms, no request reaches the server before the hint has passed;
// without a hint the row is still retried to the end. One row in flight, so
// no request was already on its way when the 429 came.
func Test429HintsInEveryFormAreHonoured(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wait   time.Duration // the least gap the hint asks for
		answer func(w http.ResponseWriter)
	}{
		{"retry_after_ms", 200 * time.Millisecond, func(w http.ResponseWriter) {
			w.WriteHeader(429)
			fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":200}`)
		}},
		{"Retry-After seconds", time.Second, func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
		}},
		// An HTTP date has whole seconds: two seconds ahead is at least one.
		{"Retry-After date", time.Second, func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(429)
			fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
		}},
		{"no hint", 0, func(w http.ResponseWriter) {
			w.WriteHeader(429)
			fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			var mu sync.Mutex
			var writes int
			var limitedAt time.Time
			var gaps []time.Duration
			r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				now := time.Now()
				if !limitedAt.IsZero() {
					gaps = append(gaps, now.Sub(limitedAt))
					limitedAt = time.Time{}
				}
				if req.Method == http.MethodPut {
					if writes++; writes%3 == 2 {
						// Taken before the answer: a Retry-After date is
						// whole seconds from a clock read inside it.
						limitedAt = time.Now()
						tc.answer(w)
						return true
					}
				}
				return false
			}
			st, err := r.apply(r.manifestOf("lim", 6), filepath.Join(r.dir, "j"), func(c *Config) { c.Concurrency = 1 })
			if err != nil || st.Outcomes["done"] != 6 {
				t.Fatalf("%v %+v", err, st)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(gaps) < 2 {
				t.Fatalf("only %d 429s were followed by a request", len(gaps))
			}
			for _, g := range gaps {
				if g < tc.wait {
					t.Errorf("a request came %v after a 429 that asked for %v", g, tc.wait)
				}
			}
		})
	}
}

func TestSpamChecker429IsNotRetried(t *testing.T) {
	r := newRig(t)
	var puts atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPut {
			puts.Add(1)
			w.WriteHeader(429)
			fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"Rate limited"}`)
			return true
		}
		return false
	}
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(r.manifestOf("spam", 3), jp, nil)
	if err != nil || st.Outcomes["failed"] != 3 || puts.Load() != 3 {
		t.Fatalf("%v %+v, %d writes", err, st, puts.Load())
	}
	sum, _ := journal.Summarize(jp)
	if sum.Failed[0].Status != 429 || sum.Failed[0].Errcode != "M_UNKNOWN" {
		t.Fatalf("journaled %+v", sum.Failed[0])
	}
}

// smallDisk mounts a tmpfs of size (e.g. "8k") for the test: a disk that
// fills up. It needs root, which CI has.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test mounts a tmpfs and must run as root in CI")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func TestFullDiskSendsNothingUnrecorded(t *testing.T) {
	dir := smallDisk(t, "8k")
	r := newRig(t)
	jp := filepath.Join(dir, "j")
	_, err := r.apply(r.manifestOf("full", 200), jp, nil)
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("err = %v, want no space left", err)
	}
	// Every write that went out has its begin record in the journal.
	b, _ := os.ReadFile(jp)
	begun := strings.Count(string(b), `"type":"begin"`)
	if w := r.fake.Writes.Load(); w == 0 || w > int64(begun) {
		t.Fatalf("%d writes sent, %d begin records journaled", w, begun)
	}
	if w := r.fake.Writes.Load(); w >= 200 {
		t.Fatal("the disk never filled")
	}
}
