package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// roomFake serves the endpoints --events reads (memberships, room messages,
// room state) on top of a bundleFake, paging as Synapse 1.160 does: a page
// reads limit events, then filters them by sender, so a page can be empty
// and still name a next page.
type roomFake struct {
	mu          sync.Mutex
	memberships map[string]map[string]string // user -> room -> membership
	timeline    map[string][]fakeEvent       // room -> events, oldest first
	requests    map[string]int               // messages requests per room
	// hold, when set, is called before a messages page is served; it
	// returns false to answer nothing (the run is being stopped).
	hold func(room, from string) bool
}

type fakeEvent struct{ ID, Sender, Type, StateKey, Membership string }

func (rf *roomFake) serve(w http.ResponseWriter, r *http.Request) bool {
	js := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	p := strings.TrimPrefix(r.URL.Path, "/_synapse/admin/v1/")
	switch {
	case strings.HasPrefix(p, "users/") && strings.HasSuffix(p, "/memberships"):
		user := strings.TrimSuffix(strings.TrimPrefix(p, "users/"), "/memberships")
		rf.mu.Lock()
		ms := rf.memberships[user]
		rf.mu.Unlock()
		js(200, map[string]any{"memberships": ms})
		return true
	case strings.HasPrefix(p, "rooms/") && strings.HasSuffix(p, "/messages"):
		room := strings.TrimSuffix(strings.TrimPrefix(p, "rooms/"), "/messages")
		q := r.URL.Query()
		rf.mu.Lock()
		rf.requests[room]++
		evs, ok := rf.timeline[room]
		hold := rf.hold
		rf.mu.Unlock()
		if hold != nil && !hold(room, q.Get("from")) {
			js(503, map[string]string{"errcode": "M_UNKNOWN", "error": "stopped"})
			return true
		}
		if !ok {
			js(404, map[string]string{"errcode": "M_NOT_FOUND", "error": "Unknown room"})
			return true
		}
		if q.Get("dir") != "f" {
			js(400, map[string]string{"errcode": "M_INVALID_PARAM", "error": "want dir=f"})
			return true
		}
		from, _ := strconv.Atoi(strings.TrimPrefix(q.Get("from"), "t"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		var filter struct {
			Senders []string `json:"senders"`
		}
		_ = json.Unmarshal([]byte(q.Get("filter")), &filter)
		end := min(from+limit, len(evs))
		chunk := []any{}
		for _, e := range evs[min(from, len(evs)):end] {
			if len(filter.Senders) == 0 || slices.Contains(filter.Senders, e.Sender) {
				chunk = append(chunk, e.json(room))
			}
		}
		out := map[string]any{"chunk": chunk, "start": fmt.Sprintf("t%d", from)}
		if from < len(evs) { // Synapse: no end once a page reads nothing
			out["end"] = fmt.Sprintf("t%d", end)
		}
		js(200, out)
		return true
	case strings.HasPrefix(p, "rooms/") && strings.HasSuffix(p, "/state"):
		room := strings.TrimSuffix(strings.TrimPrefix(p, "rooms/"), "/state")
		rf.mu.Lock()
		evs, ok := rf.timeline[room]
		rf.mu.Unlock()
		if !ok {
			js(404, map[string]string{"errcode": "M_NOT_FOUND", "error": "Room not found"})
			return true
		}
		state := []any{}
		current := map[string]int{} // state key -> index in state
		for _, e := range evs {
			if e.Type != "m.room.member" {
				continue
			}
			if i, ok := current[e.StateKey]; ok {
				state[i] = e.json(room)
				continue
			}
			current[e.StateKey] = len(state)
			state = append(state, e.json(room))
		}
		js(200, map[string]any{"state": state})
		return true
	}
	return false
}

func (e fakeEvent) json(room string) map[string]any {
	m := map[string]any{"event_id": e.ID, "sender": e.Sender, "room_id": room, "type": e.Type,
		"content": map[string]string{"body": "<" + e.ID + "> & co"}}
	if e.Type == "m.room.member" {
		m["state_key"] = e.StateKey
		m["content"] = map[string]string{"membership": e.Membership}
	}
	return m
}

// newRoomFake gives @a:hs three rooms: !r1 (joined; 7 of its 12 events
// are a's), !r2 (left; 4 of 8, b wrote on after a left), !inv (invited by
// @b:hs, none of a's).
func newRoomFake(t *testing.T) (*bundleFake, *roomFake) {
	f := newBundleFake(t, "@a:hs")
	rf := &roomFake{requests: map[string]int{}, timeline: map[string][]fakeEvent{},
		memberships: map[string]map[string]string{"@a:hs": {"!r1:hs": "join", "!r2:hs": "leave", "!inv:hs": "invite"}}}
	// Who sent each event, a letter each (J and L: a's join and leave): a
	// run of b's fills whole pages of two, which Synapse answers empty but
	// with a next page.
	add := func(room, who string) {
		for i, c := range who {
			e := fakeEvent{ID: fmt.Sprintf("$%s-%d", room[1:3], i), Sender: "@" + string(c) + ":hs", Type: "m.room.message"}
			if c == 'J' || c == 'L' {
				e = fakeEvent{ID: e.ID, Sender: "@a:hs", Type: "m.room.member", StateKey: "@a:hs", Membership: map[rune]string{'J': "join", 'L': "leave"}[c]}
			}
			rf.timeline[room] = append(rf.timeline[room], e)
		}
	}
	add("!r1:hs", "Jabbbbaaaaab")
	add("!r2:hs", "bJabaLbb")
	rf.timeline["!inv:hs"] = []fakeEvent{{ID: "$inv", Sender: "@b:hs", Type: "m.room.member", StateKey: "@a:hs", Membership: "invite"}}
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool { return rf.serve(w, r) })
	return f, rf
}

// readEvents returns the event ids of a room's file in the bundle, checking
// the manifest's count and membership for it.
func readEvents(t *testing.T, m *Manifest, dir, room, membership string) (ids, senders []string) {
	t.Helper()
	for _, f := range m.Files {
		if f.RoomID != room {
			continue
		}
		if f.Membership != membership || f.Events == nil {
			t.Fatalf("%s: manifest entry %+v, want membership %s and a count", room, f, membership)
		}
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var ev struct{ EventID, Sender string }
			if err := json.Unmarshal(sc.Bytes(), &struct {
				EventID *string `json:"event_id"`
				Sender  *string `json:"sender"`
			}{&ev.EventID, &ev.Sender}); err != nil {
				t.Fatalf("%s line %d: %v", f.Path, len(ids)+1, err)
			}
			ids, senders = append(ids, ev.EventID), append(senders, ev.Sender)
		}
		if int64(len(ids)) != *f.Events {
			t.Fatalf("%s: %d lines, the manifest counts %d", f.Path, len(ids), *f.Events)
		}
		return ids, senders
	}
	t.Fatalf("the manifest lists no file for %s", room)
	return nil, nil
}

// want is the ids of room's events in order, those of sender only unless "".
func (rf *roomFake) want(room, sender string) []string {
	var out []string
	for _, e := range rf.timeline[room] {
		if sender == "" || e.Sender == sender {
			out = append(out, e.ID)
		}
	}
	return out
}

func TestEventsEverySentEventPagedToTheEnd(t *testing.T) {
	f, rf := newRoomFake(t)
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Events: EventsSent, EventsPageSize: 2})
	bundlesOK(t, res)
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Events != EventsSent {
		t.Errorf("manifest events %q", m.Events)
	}
	for room, ms := range map[string]string{"!r1:hs": "join", "!r2:hs": "leave", "!inv:hs": "invite"} {
		ids, senders := readEvents(t, m, res[0].Path, room, ms)
		if want := rf.want(room, "@a:hs"); !slices.Equal(ids, want) {
			t.Errorf("%s: events %q, want a's %q", room, ids, want)
		}
		for _, s := range senders {
			if s != "@a:hs" {
				t.Errorf("%s: an event of %s in a's sent events", room, s)
			}
		}
	}
	// 12 events at 2 a page is 6 pages and the empty one that ends it.
	if n := rf.requests["!r1:hs"]; n != 7 {
		t.Errorf("%d messages requests for !r1, want 7 (every page, to the end)", n)
	}
	var inv struct {
		Invites []struct {
			RoomID     string `json:"room_id"`
			Membership string `json:"membership"`
			Event      struct {
				EventID string `json:"event_id"`
			} `json:"event"`
		}
		Total int
	}
	data, _ := os.ReadFile(filepath.Join(res[0].Path, "invites.json"))
	if err := json.Unmarshal(data, &inv); err != nil || inv.Total != 1 || inv.Invites[0].RoomID != "!inv:hs" ||
		inv.Invites[0].Membership != "invite" || inv.Invites[0].Event.EventID != "$inv" {
		t.Errorf("invites.json: %v %s", err, data)
	}
	if _, err := os.Stat(filepath.Join(res[0].Path, eventsDoneDir)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a complete bundle keeps its room markers")
	}
}

func TestEventsAllHoldsEveryEventOfRoomsTheUserWasIn(t *testing.T) {
	f, rf := newRoomFake(t)
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Events: EventsAll, EventsPageSize: 5})
	bundlesOK(t, res)
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := readEvents(t, m, res[0].Path, "!r1:hs", "join"); !slices.Equal(ids, rf.want("!r1:hs", "")) {
		t.Errorf("!r1: events %q, want all of %q", ids, rf.want("!r1:hs", ""))
	}
	// The room's history is shared (no visibility event): a sees what came
	// before their join, and nothing after their leave.
	if ids, _ := readEvents(t, m, res[0].Path, "!r2:hs", "leave"); !slices.Equal(ids, rf.want("!r2:hs", "")[:6]) {
		t.Errorf("!r2: events %q, want up to a's leave %q", ids, rf.want("!r2:hs", "")[:6])
	}
	// An invitee was never in the room: only what they sent there.
	if ids, _ := readEvents(t, m, res[0].Path, "!inv:hs", "invite"); len(ids) != 0 {
		t.Errorf("the invite room's history went into the invitee's bundle: %q", ids)
	}
	// A bundle with the user's own events is not enough for --events=all, and back.
	res = runBundles(t, f, BundleConfig{Out: filepath.Dir(res[0].Path), Users: []string{"@a:hs"}, Events: EventsSent})
	if res[0].Skipped {
		t.Error("a bundle of every event was taken as one of the user's own")
	}
}

// TestEventsResumeKeepsFinishedRooms stops a run while it pages !r2 (the
// rooms go in order: !inv, !r1, !r2): the next run fetches !r2 again from
// its start, and !inv and !r1 not at all. A finished file cut short behind
// the run's back is fetched again too: a marker vouches only for its size.
func TestEventsResumeKeepsFinishedRooms(t *testing.T) {
	f, rf := newRoomFake(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	rf.hold = func(room, from string) bool {
		if room == "!r2:hs" && from != "" {
			cancel()
			return false
		}
		return true
	}
	cfg := BundleConfig{Out: out, Users: []string{"@a:hs"}, Events: EventsSent, EventsPageSize: 2, BaseBackoff: 1}
	res, err := Bundles(ctx, f.client(t, 0), cfg)
	if err == nil || !errors.Is(res[0].Err, ErrNotRun) {
		t.Fatalf("the stopped run: %v, %v", err, res[0].Err)
	}
	dir := filepath.Join(out, res[0].Folder)
	if _, err := os.Stat(filepath.Join(dir, manifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stopped run wrote a manifest")
	}
	if _, err := os.Stat(filepath.Join(dir, eventsDir, eventsFileName("!r2:hs"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the half-paged room has a file under its own name")
	}

	rf.mu.Lock()
	rf.hold = nil
	before := map[string]int{}
	for r, n := range rf.requests {
		before[r] = n
	}
	rf.mu.Unlock()
	res = runBundles(t, f, cfg)
	bundlesOK(t, res)
	for room, again := range map[string]bool{"!inv:hs": false, "!r1:hs": false, "!r2:hs": true} {
		if n := rf.requests[room] - before[room]; (n > 0) != again {
			t.Errorf("%s: %d messages requests on resume (fetch again: %v)", room, n, again)
		}
	}
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	for room, ms := range map[string]string{"!r1:hs": "join", "!r2:hs": "leave"} {
		if ids, _ := readEvents(t, m, res[0].Path, room, ms); !slices.Equal(ids, rf.want(room, "@a:hs")) {
			t.Errorf("%s after resume: %q, want %q", room, ids, rf.want(room, "@a:hs"))
		}
	}

	// A complete bundle redone for media keeps its rooms.
	n1, n2 := rf.requests["!r1:hs"], rf.requests["!r2:hs"]
	withMedia := cfg
	withMedia.Media = true
	res = runBundles(t, f, withMedia)
	bundlesOK(t, res)
	if res[0].Skipped || rf.requests["!r1:hs"] != n1 || rf.requests["!r2:hs"] != n2 {
		t.Errorf("redone for media (skipped %v): %d and %d more messages requests, want none",
			res[0].Skipped, rf.requests["!r1:hs"]-n1, rf.requests["!r2:hs"]-n2)
	}
	if m, err = VerifyBundle(res[0].Path); err != nil || !m.Media {
		t.Fatalf("the bundle redone for media: %v", err)
	}

	// A marker whose file was cut: the room is fetched again.
	os.Remove(filepath.Join(dir, manifestName))
	os.MkdirAll(filepath.Join(dir, eventsDoneDir), 0o700)
	r1 := eventsFileName("!r1:hs")
	var f1 ManifestFile
	for _, fl := range m.Files {
		if fl.RoomID == "!r1:hs" {
			f1 = fl
		}
	}
	mk, _ := json.Marshal(roomMarker{RoomID: "!r1:hs", Filter: EventsSent, File: f1})
	os.WriteFile(filepath.Join(dir, eventsDoneDir, r1+".json"), mk, 0o600)
	os.Truncate(filepath.Join(dir, eventsDir, r1), 10)
	n := rf.requests["!r1:hs"]
	res = runBundles(t, f, cfg)
	bundlesOK(t, res)
	if rf.requests["!r1:hs"] == n {
		t.Error("a room file shorter than its marker says was kept")
	}
	if _, err := VerifyBundle(res[0].Path); err != nil {
		t.Error(err)
	}
}

// TestEventsStreamToDisk exports a room of 200,000 of the user's events and
// samples the heap meanwhile: it stays far below the file's size, since
// each page goes to disk before the next is asked for.
func TestEventsStreamToDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MB room")
	}
	const total = 200_000
	f := newBundleFake(t, "@a:hs")
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/memberships"):
			w.Write([]byte(`{"memberships":{"!big:hs":"join"}}`))
		case strings.HasSuffix(r.URL.Path, "/messages"):
			from, _ := strconv.Atoi(r.URL.Query().Get("from"))
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			end := min(from+limit, total)
			bw := bufio.NewWriter(w)
			bw.WriteString(`{"chunk":[`)
			for i := from; i < end; i++ {
				if i > from {
					bw.WriteByte(',')
				}
				fmt.Fprintf(bw, `{"event_id":"$e%09d","sender":"@a:hs","type":"m.room.message","room_id":"!big:hs",`+
					`"origin_server_ts":%d,"content":{"msgtype":"m.text","body":"message number %d of a long-running room"}}`, i, 1700000000000+i, i)
			}
			bw.WriteString(`]`)
			if from < total {
				fmt.Fprintf(bw, `,"end":"%d"`, end)
			}
			bw.WriteString(`}`)
			bw.Flush()
		default:
			return false
		}
		return true
	})
	// The heap the test binary holds before the export (its packages, the
	// fake) is not the export's: only what the run adds is measured.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Events: EventsSent, EventsPageSize: 1000})
	close(stop)
	top := <-peak
	top -= min(top, before.HeapInuse)
	bundlesOK(t, res)
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	var file ManifestFile
	for _, fl := range m.Files {
		if fl.RoomID == "!big:hs" {
			file = fl
		}
	}
	if file.Events == nil || *file.Events != total {
		t.Fatalf("room file %+v, want %d events", file, total)
	}
	t.Logf("%d events, %d MB on disk, heap in use grew by at most %d MB", total, file.Size>>20, top>>20)
	if top > uint64(file.Size)/4 {
		t.Errorf("heap in use grew by %d MB for a %d MB room file: the room is held in memory", top>>20, file.Size>>20)
	}
}

// TestEventsWithoutMembershipsEndpoint: a Synapse older than the
// memberships endpoint answers M_UNRECOGNIZED; the bundle then has the
// joined rooms' events, says so in a note, and a room the server cannot
// page (404) is a note, not a failure.
func TestEventsWithoutMembershipsEndpoint(t *testing.T) {
	f, rf := newRoomFake(t)
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/memberships") {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
			return true
		}
		return rf.serve(w, r)
	})
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Events: EventsSent, EventsPageSize: 3})
	bundlesOK(t, res)
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's joined_rooms: !r1:hs, and !gone:hs, which has no events.
	if ids, _ := readEvents(t, m, res[0].Path, "!r1:hs", "join"); !slices.Equal(ids, rf.want("!r1:hs", "@a:hs")) {
		t.Errorf("!r1: %q", ids)
	}
	notes := strings.Join(res[0].Notes, "\n")
	if !strings.Contains(notes, "no memberships endpoint") || !strings.Contains(notes, "room !gone:hs: the server has no events of it") {
		t.Errorf("notes: %s", notes)
	}
	for _, fl := range m.Files {
		if fl.RoomID == "!r2:hs" || fl.RoomID == "!gone:hs" {
			t.Errorf("a file for %s, which joined_rooms does not list or the server cannot page", fl.RoomID)
		}
	}
}

// TestEventsArchive: with --archive the room files are in the zip, under
// the folder, and verify there; the folder and its markers are gone.
func TestEventsArchive(t *testing.T) {
	f, rf := newRoomFake(t)
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Events: EventsSent, EventsPageSize: 4, Archive: true})
	bundlesOK(t, res)
	if !strings.HasSuffix(res[0].Path, ".zip") {
		t.Fatalf("bundle %s, want a zip", res[0].Path)
	}
	m, err := VerifyBundle(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	rooms := 0
	for _, fl := range m.Files {
		if fl.RoomID != "" {
			rooms++
			if want := int64(len(rf.want(fl.RoomID, "@a:hs"))); fl.Events == nil || *fl.Events != want {
				t.Errorf("%s: %v events listed, want %d", fl.RoomID, fl.Events, want)
			}
		}
	}
	if rooms != 3 {
		t.Errorf("%d room files in the zip's manifest, want 3", rooms)
	}
	if _, err := os.Stat(strings.TrimSuffix(res[0].Path, ".zip")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the folder (and its room markers) outlived the zip")
	}
}
