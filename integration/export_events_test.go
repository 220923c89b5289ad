package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synbatch/synbatch/export"
)

// roomPair is one user's events of one room, as export data --events asks
// for them: the room, and the sender its filter names.
type roomPair struct{ room, sender string }

// messagesProxy stands in front of the real Synapse and counts the admin
// room messages requests per room and filtered sender; it notes each pair
// whose last page (one without "end") reached synbatch. With holdAfter set
// it holds the first request for a further page of holdFor's events once
// holdAfter rooms of theirs were read to the end: the test kills synbatch
// while that room is half read. (A room where they sent nothing is read in
// one request: Synapse filters by sender in its query.)
type messagesProxy struct {
	*httptest.Server
	mu        sync.Mutex
	requests  map[roomPair]int
	firstTo   map[roomPair]string // the from of each pair's first request in this run
	finished  map[roomPair]bool
	order     []roomPair // pairs in the order first asked for
	holdFor   string
	holdAfter int
	held      chan roomPair // told the held pair
	release   chan struct{}
}

func newMessagesProxy(t *testing.T, target string) *messagesProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &messagesProxy{held: make(chan roomPair, 1), release: make(chan struct{})}
	p.reset()
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		pair, ok := messagesPair(resp.Request)
		if !ok || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return err
		}
		var page struct {
			End *string `json:"end"`
		}
		if json.Unmarshal(body, &page) == nil && page.End == nil {
			p.mu.Lock()
			p.finished[pair] = true
			p.mu.Unlock()
		}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pair, ok := messagesPair(r); ok {
			p.mu.Lock()
			if p.requests[pair] == 0 {
				p.order = append(p.order, pair)
				p.firstTo[pair] = r.URL.Query().Get("from")
			}
			p.requests[pair]++
			finished := 0
			for q := range p.finished {
				if q.sender == p.holdFor {
					finished++
				}
			}
			hold := p.holdAfter > 0 && pair.sender == p.holdFor && finished >= p.holdAfter && r.URL.Query().Get("from") != ""
			if hold {
				p.holdAfter = 0
			}
			p.mu.Unlock()
			if hold {
				p.held <- pair
				<-p.release
				http.Error(w, "held", http.StatusBadGateway)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// reset starts counting a new run.
func (p *messagesProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests, p.firstTo, p.finished, p.order = map[roomPair]int{}, map[roomPair]string{}, map[roomPair]bool{}, nil
}

// messagesPair reads the room and the filter's sender off a request for
// GET /_synapse/admin/v1/rooms/<room>/messages.
func messagesPair(r *http.Request) (roomPair, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/_synapse/admin/v1/rooms/")
	if !ok || !strings.HasSuffix(rest, "/messages") {
		return roomPair{}, false
	}
	room, err := url.PathUnescape(strings.TrimSuffix(rest, "/messages"))
	if err != nil {
		return roomPair{}, false
	}
	var f struct {
		Senders []string `json:"senders"`
	}
	_ = json.Unmarshal([]byte(r.URL.Query().Get("filter")), &f)
	return roomPair{room: room, sender: strings.Join(f.Senders, ",")}, true
}

// clientEvents is clientTimeline by sender: each one's event ids, oldest first.
func (e *env) clientEvents(t *testing.T, u *roomUser, room string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, ev := range e.clientTimeline(t, u, room) {
		out[ev.Sender] = append(out[ev.Sender], ev.EventID)
	}
	return out
}

// bundleRoomEvents reads one user's bundle of the given events mode: each
// room file's event ids by room (with sent, each checked to be the user's),
// its membership by room, and checks every listed file's sha256 itself.
func bundleRoomEvents(t *testing.T, dir, user, mode string) (ids map[string][]string, membership map[string]string) {
	t.Helper()
	var m export.Manifest
	dataReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	if m.Events != mode {
		t.Fatalf("%s: manifest events %q, want %q", dir, m.Events, mode)
	}
	ids, membership = map[string][]string{}, map[string]string{}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
			t.Errorf("%s: %d bytes, sha256 %x; the manifest says %d, %s", f.Path, len(b), sum, f.Size, f.SHA256)
		}
		if f.RoomID == "" {
			continue
		}
		membership[f.RoomID] = f.Membership
		ids[f.RoomID] = []string{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				EventID string `json:"event_id"`
				Sender  string `json:"sender"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if mode == export.EventsSent && ev.Sender != user {
				t.Errorf("%s: event %s of %s in %s's sent events", f.Path, ev.EventID, ev.Sender, user)
			}
			ids[f.RoomID] = append(ids[f.RoomID], ev.EventID)
		}
	}
	return ids, membership
}

// TestExportDataEventsKilledThenResumed is issue 13's acceptance: two users
// in three rooms (one left by one of them) and an invite, each sending
// messages. export data --events is killed -9 while it pages a room of the
// second user; the same command again fetches no room it had read to the
// end (counted at a proxy), and then each bundle holds every event its user
// sent, as the client API shows the rooms, with checksums that verify.
func TestExportDataEventsKilledThenResumed(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	a, b := e.roomUser(t, p+"-a"), e.roomUser(t, p+"-b")
	var rooms []string
	for i := range 3 {
		room := e.roomOf(t, a, fmt.Sprintf("Events %d %s", i, p), "public_chat")
		e.mustCall(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room), b.token, map[string]any{}, nil)
		e.roomSend(t, a, room, 3)
		e.roomSend(t, b, room, 4)
		e.roomSend(t, a, room, 2)
		rooms = append(rooms, room)
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(rooms[2])+"/leave", b.token, map[string]any{}, nil)
	e.roomSend(t, a, rooms[2], 2) // after b left: not b's to see, and not b's events
	invited := e.roomOf(t, a, "Invite "+p, "private_chat")
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(invited)+"/invite", a.token, map[string]any{"user_id": b.id}, nil)
	e.roomSend(t, a, invited, 1)

	proxy := newMessagesProxy(t, e.server)
	proxy.holdFor, proxy.holdAfter = b.id, 1
	args := []string{"export", "data", a.id, b.id, "--events", "--events-page-size", "2", "--concurrency", "1", "--out", "bundles"}
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = dir
	cmd.Env = e.binEnv(dir, proxy.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var held roomPair
	select {
	case held = <-proxy.held:
	case <-time.After(10 * time.Minute): // a hang guard: under CI's load this export took 90 s
		cmd.Process.Kill()
		t.Fatalf("no further page of b's events asked for after one of b's rooms in ten minutes\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(proxy.release)

	proxy.mu.Lock()
	done := map[roomPair]bool{}
	for pair := range proxy.finished {
		done[pair] = true
	}
	proxy.mu.Unlock()
	doneOfB := 0
	for pair := range done {
		if pair.sender == b.id {
			doneOfB++
		}
	}
	if doneOfB == 0 || done[held] {
		t.Fatalf("killed with %d of b's rooms read to the end, the held one %v: not mid-export", doneOfB, done[held])
	}
	t.Logf("killed while reading %s; read to the end before: %d rooms (%d of b's)", held.room, len(done), doneOfB)

	proxy.reset()
	r := e.via(proxy.URL).synbatch(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	proxy.mu.Lock()
	for pair := range done {
		if n := proxy.requests[pair]; n != 0 {
			t.Errorf("resume asked %d times for %s's events of %s, read to the end before the kill", n, pair.sender, pair.room)
		}
	}
	if proxy.requests[held] == 0 || proxy.firstTo[held] != "" {
		t.Errorf("resume asked %d times for the half-read room, first from %q: want it read again from its start",
			proxy.requests[held], proxy.firstTo[held])
	}
	proxy.mu.Unlock()

	// What the rooms hold, read back through the client API as a, who is
	// in all four.
	truth := map[string]map[string][]string{}
	for _, room := range append(slices.Clone(rooms), invited) {
		truth[room] = e.clientEvents(t, a, room)
	}
	index := dataReadIndex(t, filepath.Join(dir, "bundles"))
	for _, u := range []*roomUser{a, b} {
		bdir := filepath.Join(dir, "bundles", index[u.id])
		if _, err := export.VerifyBundle(bdir); err != nil {
			t.Fatalf("%s: %v", u.id, err)
		}
		got, membership := bundleRoomEvents(t, bdir, u.id, export.EventsSent)
		for room, bySender := range truth {
			want := bySender[u.id]
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got[room], want) {
				t.Errorf("%s in %s: bundle has %d events %q, the room shows %d %q", u.id, room, len(got[room]), got[room], len(want), want)
			}
		}
		if len(got) != len(truth) {
			t.Errorf("%s: %d room files, want %d", u.id, len(got), len(truth))
		}
		if u == b {
			if membership[rooms[2]] != "leave" || membership[invited] != "invite" || membership[rooms[0]] != "join" {
				t.Errorf("b's memberships in the manifest: %v", membership)
			}
			var inv struct {
				Invites []struct {
					RoomID string `json:"room_id"`
					Event  struct {
						Sender  string `json:"sender"`
						Content struct {
							Membership string `json:"membership"`
						} `json:"content"`
					} `json:"event"`
				} `json:"invites"`
			}
			dataReadJSON(t, filepath.Join(bdir, "invites.json"), &inv)
			if len(inv.Invites) != 1 || inv.Invites[0].RoomID != invited || inv.Invites[0].Event.Sender != a.id ||
				inv.Invites[0].Event.Content.Membership != "invite" {
				t.Errorf("b's invites.json: %+v, want a's invite to %s", inv, invited)
			}
		}
	}
}

// TestExportDataEventsAllIsWhatTheUserSaw exports --events=all for a user
// in three rooms, one of each history visibility that hides something
// (joined, invited, and shared, which they left): each room file holds
// exactly the events the client API shows that user, in order.
func TestExportDataEventsAllIsWhatTheUserSaw(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	a, b := e.roomUser(t, p+"-a"), e.roomUser(t, p+"-b")
	path := func(room, rest string) string { return "/_matrix/client/v3/rooms/" + url.PathEscape(room) + rest }
	join := func(room string) {
		e.mustCall(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room), b.token, map[string]any{}, nil)
	}
	var rooms []string
	for _, vis := range []string{"joined", "invited", "shared"} {
		room := e.roomOf(t, a, "Seen "+vis+" "+p, "public_chat")
		e.mustCall(t, http.MethodPut, path(room, "/state/m.room.history_visibility/"), a.token, map[string]any{"history_visibility": vis}, nil)
		e.roomSend(t, a, room, 2) // before b is anywhere near
		if vis == "invited" {
			e.mustCall(t, http.MethodPost, path(room, "/invite"), a.token, map[string]any{"user_id": b.id}, nil)
			e.roomSend(t, a, room, 2) // seen once invited
		}
		join(room)
		e.roomSend(t, b, room, 2)
		e.roomSend(t, a, room, 1)
		if vis == "shared" {
			e.mustCall(t, http.MethodPost, path(room, "/leave"), b.token, map[string]any{}, nil)
			e.roomSend(t, a, room, 2) // after b left
		}
		rooms = append(rooms, room)
	}

	r := e.synbatch(t, dir, "export", "data", b.id, "--events=all", "--events-page-size", "3", "--out", "bundles")
	if r.code != 0 {
		t.Fatalf("export data --events=all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bdir := filepath.Join(dir, "bundles", dataReadIndex(t, filepath.Join(dir, "bundles"))[b.id])
	if _, err := export.VerifyBundle(bdir); err != nil {
		t.Fatal(err)
	}
	got, _ := bundleRoomEvents(t, bdir, b.id, export.EventsAll)
	for _, room := range rooms {
		var want []string
		for _, ev := range e.clientTimeline(t, b, room) {
			want = append(want, ev.EventID)
		}
		if !slices.Equal(got[room], want) {
			t.Errorf("%s: the bundle has %d events\n%q\nthe client API shows b %d\n%q", room, len(got[room]), got[room], len(want), want)
		}
		all := e.clientTimeline(t, a, room)
		if len(want) == 0 || len(want) >= len(all) {
			t.Errorf("%s: b sees %d of the room's %d events: the room does not test what it should", room, len(want), len(all))
		}
	}
}

// clientTimeline reads a room through the client API as u, newest first as
// clients page (for a user who left, /messages starts at their leave), and
// returns its events oldest first.
func (e *env) clientTimeline(t *testing.T, u *roomUser, room string) []clientEvent {
	t.Helper()
	var evs []clientEvent
	from := ""
	for range 1000 {
		q := url.Values{"dir": {"b"}, "limit": {"100"}}
		if from != "" {
			q.Set("from", from)
		}
		var page struct {
			Chunk []clientEvent `json:"chunk"`
			End   string        `json:"end"`
		}
		e.mustCall(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), u.token, nil, &page)
		evs = append(evs, page.Chunk...)
		if page.End == "" {
			slices.Reverse(evs)
			return evs
		}
		from = page.End
	}
	t.Fatalf("%s: the client API's messages never ended", room)
	return nil
}

type clientEvent struct {
	EventID string `json:"event_id"`
	Sender  string `json:"sender"`
}

// TestExportDataEventsWhatTheMembershipsShow pins down what the Admin API
// lets --events find, against the real Synapse: a room the user forgot, one
// they were banned from and one they knocked on are in the bundle (the
// knock in invites.json too); a room that every local member has left is
// not, though the server still holds its events: Synapse drops its current
// state, which the memberships endpoint reads. --events-scan-rooms finds it.
func TestExportDataEventsWhatTheMembershipsShow(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	a, b := e.roomUser(t, p+"-a"), e.roomUser(t, p+"-b")
	path := func(room, rest string) string { return "/_matrix/client/v3/rooms/" + url.PathEscape(room) + rest }
	joinAndSay := func(room string) {
		e.mustCall(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room), b.token, map[string]any{}, nil)
		e.roomSend(t, b, room, 2)
	}
	forgot := e.roomOf(t, a, "Forgot "+p, "public_chat")
	joinAndSay(forgot)
	e.mustCall(t, http.MethodPost, path(forgot, "/leave"), b.token, map[string]any{}, nil)
	e.mustCall(t, http.MethodPost, path(forgot, "/forget"), b.token, map[string]any{}, nil)
	banned := e.roomOf(t, a, "Banned "+p, "public_chat")
	joinAndSay(banned)
	e.mustCall(t, http.MethodPost, path(banned, "/ban"), a.token, map[string]any{"user_id": b.id}, nil)
	empty := e.roomOf(t, a, "Empty "+p, "public_chat")
	joinAndSay(empty)
	e.mustCall(t, http.MethodPost, path(empty, "/leave"), b.token, map[string]any{}, nil)
	e.mustCall(t, http.MethodPost, path(empty, "/leave"), a.token, map[string]any{}, nil)
	var knock struct {
		RoomID string `json:"room_id"`
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/createRoom", a.token, map[string]any{"preset": "private_chat", "room_version": "10",
		"initial_state": []any{map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]string{"join_rule": "knock"}}}}, &knock)
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/knock/"+url.PathEscape(knock.RoomID), b.token, map[string]any{}, nil)

	r := e.synbatch(t, dir, "export", "data", b.id, "--events", "--out", "bundles")
	if r.code != 0 {
		t.Fatalf("export data --events: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bdir := filepath.Join(dir, "bundles", dataReadIndex(t, filepath.Join(dir, "bundles"))[b.id])
	got, membership := bundleRoomEvents(t, bdir, b.id, export.EventsSent)
	for room, want := range map[string]string{forgot: "leave", banned: "ban", knock.RoomID: "knock"} {
		if membership[room] != want {
			t.Errorf("%s: membership %q in the manifest, want %q", room, membership[room], want)
		}
	}
	for _, room := range []string{forgot, banned} {
		// b's join and two messages, and for the forgotten room b's leave.
		if len(got[room]) < 3 {
			t.Errorf("%s: %d of b's events in the bundle, want at least 3", room, len(got[room]))
		}
	}
	if _, ok := membership[empty]; ok {
		t.Errorf("the room every local member left is in the bundle without --events-scan-rooms: the README says it cannot be")
	}
	// The server still has the empty room's events: the gap is the API's.
	var page struct {
		Chunk []json.RawMessage `json:"chunk"`
	}
	e.mustCall(t, http.MethodGet, "/_synapse/admin/v1/rooms/"+url.PathEscape(empty)+"/messages?dir=f&limit=50", e.adminToken(t), nil, &page)
	if len(page.Chunk) == 0 {
		t.Errorf("the admin API has no events of the emptied room %s", empty)
	}
	var inv struct {
		Invites []struct {
			RoomID     string `json:"room_id"`
			Membership string `json:"membership"`
			Event      struct {
				Sender string `json:"sender"`
			} `json:"event"`
		} `json:"invites"`
	}
	dataReadJSON(t, filepath.Join(bdir, "invites.json"), &inv)
	if len(inv.Invites) != 1 || inv.Invites[0].RoomID != knock.RoomID || inv.Invites[0].Membership != "knock" || inv.Invites[0].Event.Sender != b.id {
		t.Errorf("invites.json: %+v, want b's knock on %s", inv, knock.RoomID)
	}

	// --events-scan-rooms finds the emptied room: b's events there, and with
	// --events=all what the client API still shows b (a departed member may
	// read up to their leave), in both cases read back as b.
	seen := e.clientTimeline(t, b, empty)
	var mine, all []string
	for _, ev := range seen {
		all = append(all, ev.EventID)
		if ev.Sender == b.id {
			mine = append(mine, ev.EventID)
		}
	}
	if len(mine) < 3 || len(all) <= len(mine) {
		t.Fatalf("the client API shows b %d events of the emptied room, %d of them b's: not what the room was made with", len(all), len(mine))
	}
	for mode, want := range map[string][]string{export.EventsSent: mine, export.EventsAll: all} {
		out := "scanned-" + mode
		r := e.synbatch(t, dir, "export", "data", b.id, "--events="+mode, "--events-scan-rooms", "--out", out)
		if r.code != 0 || !strings.Contains(r.stderr, "found by the room scan") {
			t.Fatalf("export data --events=%s --events-scan-rooms: exit %d\n%s%s", mode, r.code, r.stdout, r.stderr)
		}
		got, membership := bundleRoomEvents(t, filepath.Join(dir, out, dataReadIndex(t, filepath.Join(dir, out))[b.id]), b.id, mode)
		if membership[empty] != "leave" || !slices.Equal(got[empty], want) {
			t.Errorf("--events=%s --events-scan-rooms: the emptied room is %q with %q, want leave with %q", mode, membership[empty], got[empty], want)
		}
	}
}
