package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notices counts, over every room the user has a membership in, the
// messages whose body is body, read straight from the server with the
// admin API (memberships, then each room's messages).
func (e *env) notices(t *testing.T, userID, body string) int {
	t.Helper()
	tok := e.adminToken(t)
	var ms struct {
		Memberships map[string]string `json:"memberships"`
	}
	e.mustCall(t, http.MethodGet, "/_synapse/admin/v1/users/"+url.PathEscape(userID)+"/memberships", tok, nil, &ms)
	n := 0
	for room := range ms.Memberships {
		from := ""
		for {
			q := url.Values{"dir": {"b"}, "limit": {"100"}, "filter": {`{"types":["m.room.message"]}`}}
			if from != "" {
				q.Set("from", from)
			}
			var page struct {
				Chunk []struct {
					Content map[string]any `json:"content"`
				} `json:"chunk"`
				End string `json:"end"`
			}
			e.mustCall(t, http.MethodGet, "/_synapse/admin/v1/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), tok, nil, &page)
			for _, ev := range page.Chunk {
				if ev.Content["body"] == body {
					n++
				}
			}
			if page.End == "" || len(page.Chunk) == 0 {
				break
			}
			from = page.End
		}
	}
	return n
}

// otherAdmin returns e with the token file of a second server admin: a
// transaction id Synapse remembers for one token means nothing for another.
func (e *env) otherAdmin(t *testing.T, dir, local string) *env {
	t.Helper()
	pw := "pw-" + local + "-Zq7"
	e.newUser(t, local, map[string]any{"password": pw, "admin": true})
	tok := e.loginDevice(t, local, pw, "SYNBATCH2")
	t.Cleanup(func() { e.call(t, http.MethodPost, "/_matrix/client/v3/logout", tok, map[string]any{}, nil) })
	c := *e
	c.tokenFile = writeFile(t, dir, "other.token", tok+"\n")
	return &c
}

// TestNoticesKilledAndResumedAreDeliveredOnce is issue 13's acceptance:
// 200 notice rows, apply killed -9 mid-run and run again; each user's
// rooms then hold the notice exactly once. The same manifest applied again
// with another admin's token (so Synapse's transaction memory, which is
// per token, cannot help) and a new journal sends nothing.
func TestNoticesKilledAndResumedAreDeliveredOnce(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	const n = 200
	users := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range users {
		users[i] = e.id(fmt.Sprintf("%s-n%03d", p, i))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := e.client.PutUser(ctx, users[i], map[string]any{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	body := func(i int) string { return fmt.Sprintf("Maintenance tonight %s (%d)", p, i) }
	var b strings.Builder
	b.WriteString("action,user_id,message,formatted\n")
	for i, u := range users {
		fmt.Fprintf(&b, "notice,%s,%s,<b>%s</b>\n", u, body(i), body(i))
	}
	writeFile(t, dir, "notices.csv", b.String())
	jpath := filepath.Join(dir, "notices.csv.journal.jsonl")

	cmd := exec.Command(e.bin, "apply", "notices.csv", "--concurrency", "8", "--rate", "0")
	cmd.Dir = dir
	cmd.Env = e.binEnv(dir, e.server)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Generous: with the other tests beside it on a loaded machine, a
	// notice a second is possible.
	waitRows(t, cmd, jpath, 60, 10*time.Minute, &errb)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killedAt := countRows(t, jpath)
	if killedAt >= n {
		t.Fatalf("the run finished before the kill (%d rows)", killedAt)
	}
	t.Logf("killed after %d journaled rows", killedAt)

	st := e.applyJSON(t, dir, 0, "notices.csv", "--concurrency", "8", "--rate", "0")
	if st.Resumed != killedAt || st.Resumed+st.Outcomes["done"]+st.Outcomes["unchanged"] != n {
		t.Fatalf("resume: %+v (killed at %d)", st, killedAt)
	}
	for i, u := range users {
		if got := e.notices(t, u, body(i)); got != 1 {
			t.Errorf("%s holds the notice %d times, want 1", u, got)
		}
	}

	other := e.otherAdmin(t, dir, p+"-admin2")
	st = other.applyJSON(t, dir, 0, "notices.csv", "--journal", filepath.Join(dir, "again.jsonl"), "--rate", "0")
	if st.Writes != 0 || st.Outcomes["unchanged"] != n {
		t.Fatalf("again with another admin's token: %+v, want every row unchanged and no write", st)
	}
	for _, i := range []int{0, killedAt - 1, killedAt, n - 1} {
		if got := e.notices(t, users[i], body(i)); got != 1 {
			t.Errorf("%s holds the notice %d times after the repeat, want 1", users[i], got)
		}
	}
}
