package integration

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// countingProxy forwards everything to the real Synapse and counts the
// requests whose method and path end match.
type countingProxy struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a killed client's requests end as "context canceled"
	p := &countingProxy{counts: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// count is how many requests of the method had a path ending in suffix.
func (p *countingProxy) count(method, suffix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.counts {
		if m, path, _ := strings.Cut(k, " "); m == method && strings.HasSuffix(path, suffix) {
			n += c
		}
	}
	return n
}

// sentBy reads a room's timeline as member (through the client API, as
// any other member would see it) and returns the events sender sent.
func (e *env) sentBy(t *testing.T, member *roomUser, room, sender string) []map[string]any {
	t.Helper()
	var out []map[string]any
	from := ""
	for {
		q := url.Values{"dir": {"b"}, "limit": {"100"}}
		if from != "" {
			q.Set("from", from)
		}
		var page struct {
			Chunk []map[string]any `json:"chunk"`
			End   string           `json:"end"`
		}
		e.mustCall(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), member.token, nil, &page)
		for _, ev := range page.Chunk {
			if ev["sender"] == sender {
				out = append(out, ev)
			}
		}
		if page.End == "" || len(page.Chunk) == 0 {
			return out
		}
		from = page.End
	}
}

// TestRedactKilledWhilePollingResumesTheSameTask: a redact row is killed
// -9 as soon as the journal holds the redaction's task id; the same command
// again polls that task (a counting proxy sees one redact POST in all, the
// journal one task) and afterwards every message and join the user sent
// reads as redacted to another member of each room.
func TestRedactKilledWhilePollingResumesTheSameTask(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	spammer := e.roomUser(t, p+"-spam")
	rooms := []string{e.roomOf(t, owner, "Redact A "+p, "public_chat"), e.roomOf(t, owner, "Redact B "+p, "public_chat")}
	for _, r := range rooms {
		if err := e.client.Join(ctx, r, spammer.id); err != nil {
			t.Fatal(err)
		}
		// Enough events that the task runs for a while: each redaction is
		// an event of its own.
		e.roomSend(t, spammer, r, 60)
	}
	e.roomSend(t, owner, rooms[0], 2) // the owner's own stay as they are

	proxy := newCountingProxy(t, e.server)
	via := e.via(proxy.URL)
	writeFile(t, dir, "redact.csv", fmt.Sprintf("action,user_id,reason\nredact,%s,spam %s\n", spammer.id, p))
	task := via.killedTaskResumes(t, dir, "redact.csv")
	if n := proxy.count(http.MethodPost, "/redact"); n != 1 {
		t.Fatalf("%d redact POSTs reached the server, want 1", n)
	}
	if status, err := e.client.RedactStatus(ctx, task); err != nil || status.Status != "complete" || len(status.FailedRedactions) != 0 {
		t.Fatalf("task %s: %+v %v", task, status, err)
	}

	for _, r := range rooms {
		evs := e.sentBy(t, owner, r, spammer.id)
		n := 0
		for _, ev := range evs {
			if ev["type"] != "m.room.message" && ev["type"] != "m.room.member" {
				continue
			}
			n++
			unsigned, _ := ev["unsigned"].(map[string]any)
			content, _ := ev["content"].(map[string]any)
			if unsigned["redacted_because"] == nil || content["body"] != nil {
				t.Fatalf("room %s: event %v of %s is not redacted", r, ev["event_id"], spammer.id)
			}
			because, _ := unsigned["redacted_because"].(map[string]any)
			bc, _ := because["content"].(map[string]any)
			if bc["reason"] != "spam "+p {
				t.Fatalf("room %s: redaction of %v has reason %v", r, ev["event_id"], bc["reason"])
			}
		}
		if n < 61 { // 60 messages and the join
			t.Fatalf("room %s: %d events of %s read back, want 61", r, n, spammer.id)
		}
	}
	for _, ev := range e.sentBy(t, spammer, rooms[0], owner.id) {
		if unsigned, _ := ev["unsigned"].(map[string]any); ev["type"] == "m.room.message" && unsigned["redacted_because"] != nil {
			t.Fatalf("the owner's message %v was redacted too", ev["event_id"])
		}
	}
}

// TestDeactivateWithRedactAndClearExternalIDs: a deactivate row with
// redact and clear=external_ids leaves the user's messages redacted to
// another member (the redaction ran before deactivation left the rooms),
// no SSO mapping pointing at the account, the account deactivated; and the
// same row again with a new journal writes nothing.
func TestDeactivateWithRedactAndClearExternalIDs(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	leaver := e.roomUser(t, p+"-leaver")
	mustPut(t, e, leaver.id, map[string]any{"external_ids": []map[string]string{{"auth_provider": "oidc-" + p, "external_id": "sub-" + p}}})
	room := e.roomOf(t, owner, "Deactivate "+p, "public_chat")
	if err := e.client.Join(ctx, room, leaver.id); err != nil {
		t.Fatal(err)
	}
	e.roomSend(t, leaver, room, 5)

	writeFile(t, dir, "d.csv", fmt.Sprintf("action,user_id,redact,clear\ndeactivate,%s,true,external_ids\n", leaver.id))
	st := e.applyJSON(t, dir, 0, "d.csv", "--yes")
	if st.Outcomes["done"] != 1 {
		t.Fatalf("apply: %+v", st)
	}
	if u := e.mustUser(t, leaver.id); !bool(u.Deactivated) || len(u.ExternalIDs) != 0 {
		t.Fatalf("after apply: deactivated %v, external ids %v", u.Deactivated, u.ExternalIDs)
	}
	if owner := e.idOwner(t, "oidc-"+p, "sub-"+p); owner != "" {
		t.Fatalf("the SSO id still maps to %s", owner)
	}
	n := 0
	for _, ev := range e.sentBy(t, owner, room, leaver.id) {
		if ev["type"] != "m.room.message" {
			continue
		}
		n++
		if unsigned, _ := ev["unsigned"].(map[string]any); unsigned["redacted_because"] == nil {
			t.Fatalf("message %v of the deactivated user is not redacted", ev["event_id"])
		}
	}
	if n != 5 {
		t.Fatalf("%d messages of %s read back, want 5", n, leaver.id)
	}
	e.applyAgain(t, dir, "d.csv", "--yes")
}
