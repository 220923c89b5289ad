package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/internal/testenv"
	"github.com/synbatch/synbatch/synapse"
	"golang.org/x/sync/errgroup"
)

// roomUser is a local user logged in for a room test's setup. Its rate
// limits are lifted (an override of 0 lifts every limiter of Synapse
// 1.160, room creation and uploads included), so a test can make rooms
// and uploads without waiting: the admin's own room-creation burst is
// shared with every other test and run on this server.
type roomUser struct {
	id, token string
}

func (e *env) roomUser(t *testing.T, local string) *roomUser {
	t.Helper()
	ctx := context.Background()
	u := &roomUser{id: e.id(local)}
	pw := "pw-" + local + "-Xy9"
	if _, err := e.client.PutUser(ctx, u.id, map[string]any{"password": pw}); err != nil {
		t.Fatalf("create %s: %v", u.id, err)
	}
	if err := e.client.SetRatelimit(ctx, u.id, 0, 0); err != nil {
		t.Fatalf("lift the rate limits of %s: %v", u.id, err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "password": pw,
		"identifier": map[string]string{"type": "m.id.user", "user": local}}, &login)
	u.token = login.AccessToken
	t.Cleanup(func() { e.call(t, http.MethodPost, "/_matrix/client/v3/logout", u.token, map[string]any{}, nil) })
	return u
}

// roomOf makes a room owned by u, with a preset: public_chat or private_chat.
func (e *env) roomOf(t *testing.T, u *roomUser, name, preset string) string {
	t.Helper()
	var out struct {
		RoomID string `json:"room_id"`
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/createRoom", u.token, map[string]any{"name": name, "preset": preset}, &out)
	return out.RoomID
}

// roomSend sends n messages to a room as u.
func (e *env) roomSend(t *testing.T, u *roomUser, room string, n int) {
	t.Helper()
	for i := range n {
		e.mustCall(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%s-%d", url.PathEscape(room), uniq(t), i),
			u.token, map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d", i)}, nil)
	}
}

// clockCut returns a unix ms time after every event or upload made so far
// and before every one made from now on: it waits (a millisecond or two,
// not a guessed second) until the clock, which Synapse on this machine
// stamps events and media with, has passed it.
func clockCut() int64 {
	cut := time.Now().UnixMilli() + 1
	for time.Now().UnixMilli() <= cut {
		runtime.Gosched()
	}
	return cut
}

// roomUpload uploads n files of the given size as u, a few at a time.
func (e *env) roomUpload(t *testing.T, u *roomUser, n, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Random content: Synapse 1.160 quarantines a new upload whose
			// sha256 matches quarantined media, even an earlier run's.
			body := make([]byte, size)
			_, _ = rand.Read(body)
			req, _ := http.NewRequest(http.MethodPost, e.server+"/_matrix/media/v3/upload?filename=f.bin", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+u.token)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("upload: %s", resp.Status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func (e *env) media(t *testing.T, id string) []synapse.Media {
	t.Helper()
	var all []synapse.Media
	from := ""
	for {
		p, err := e.client.UserMedia(context.Background(), id, from, 500)
		if err != nil {
			t.Fatalf("media of %s: %v", id, err)
		}
		all = append(all, p.Media...)
		if p.NextToken == "" {
			return all
		}
		from = p.NextToken
	}
}

func (e *env) blocked(t *testing.T, room string) bool {
	t.Helper()
	b, _, err := e.client.RoomBlock(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) members(t *testing.T, room string) []string {
	t.Helper()
	m, err := e.client.RoomMembers(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// applyRooms applies a manifest of room rows (destructive ones need --yes)
// and checks every row ended done.
func (e *env) applyRooms(t *testing.T, dir, manifest string, rows int) {
	t.Helper()
	st := e.applyJSON(t, dir, 0, manifest, "--yes")
	if st.Outcomes["done"] != rows || st.Rows != rows {
		j := journalRows(t, filepath.Join(dir, st.Journal))
		t.Fatalf("apply %s: %+v, want %d rows done\njournal: %+v", manifest, st, rows, j)
	}
}

func TestRoomBlockAndUnblock(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	room := e.roomOf(t, owner, "Block me "+p, "public_chat")
	// A room this server never saw can be blocked too, ahead of anyone joining.
	unknown := "!" + p + "unknown:" + e.serverName

	writeFile(t, dir, "block.csv", fmt.Sprintf("action,room_id\nblock,%s\nblock,%s\n", room, unknown))
	plan := e.synbatch(t, dir, "plan", "block.csv")
	if plan.code != 0 || !strings.Contains(plan.stdout, fmt.Sprintf(`row 2 %s block: update: room: "Block me %s" (1 member) → blocked`, room, p)) ||
		!strings.Contains(plan.stdout, "row 3 "+unknown+" block: update: room: not known to this server → blocked") {
		t.Fatalf("plan:\n%s\n%s", plan.stdout, plan.stderr)
	}
	e.applyRooms(t, dir, "block.csv", 2)
	if !e.blocked(t, room) || !e.blocked(t, unknown) {
		t.Fatal("not blocked")
	}
	e.applyAgain(t, dir, "block.csv")
	// Blocked rooms refuse joins.
	joiner := e.newUser(t, p+"-joiner", nil)
	if err := e.client.Join(context.Background(), room, joiner); err == nil {
		t.Fatal("a user joined a blocked room")
	}

	writeFile(t, dir, "unblock.csv", fmt.Sprintf("action,room_id\nunblock,%s\nunblock,%s\n", room, unknown))
	e.applyRooms(t, dir, "unblock.csv", 2)
	if e.blocked(t, room) || e.blocked(t, unknown) {
		t.Fatal("still blocked")
	}
	e.applyAgain(t, dir, "unblock.csv")
}

func TestRoomMakeAdminAndJoin(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	private := e.roomOf(t, owner, "Private "+p, "private_chat")
	public := e.roomOf(t, owner, "Public "+p, "public_chat")
	mod := e.newUser(t, p+"-mod", nil)
	a, b := e.newUser(t, p+"-a", nil), e.newUser(t, p+"-b", nil)

	// make-room-admin by alias-free id; join several users, given bare.
	writeFile(t, dir, "rooms.csv", fmt.Sprintf("action,room_id,user_id\nmake-room-admin,%s,%s\njoin,%s,%s-a;%s-b\n", private, mod, public, p, p))
	plan := e.synbatch(t, dir, "plan", "rooms.csv")
	if plan.code != 0 || !strings.Contains(plan.stdout, fmt.Sprintf("%s made room admin (power level 0 → 100), invited", mod)) ||
		!strings.Contains(plan.stdout, a+" joins") || !strings.Contains(plan.stdout, b+" joins") {
		t.Fatalf("plan:\n%s\n%s", plan.stdout, plan.stderr)
	}
	e.applyRooms(t, dir, "rooms.csv", 2)

	pls, err := e.client.RoomState(ctx, private, "m.room.power_levels")
	if err != nil || len(pls) != 1 {
		t.Fatalf("power levels: %v %v", pls, err)
	}
	var pl struct {
		Users map[string]int `json:"users"`
	}
	_ = json.Unmarshal(pls[0].Content, &pl)
	if pl.Users[mod] != 100 {
		t.Fatalf("%s has power %d, want 100 (%v)", mod, pl.Users[mod], pl.Users)
	}
	invited := false
	mem, _ := e.client.RoomState(ctx, private, "m.room.member")
	for _, ev := range mem {
		invited = invited || ev.StateKey == mod && strings.Contains(string(ev.Content), `"invite"`)
	}
	if !invited {
		t.Fatalf("%s was not invited to the private room", mod)
	}
	if m := e.members(t, public); !slices.Contains(m, a) || !slices.Contains(m, b) {
		t.Fatalf("members of the public room: %v", m)
	}
	e.applyAgain(t, dir, "rooms.csv")

	// Synapse's own failure for a user that does not exist is caught first.
	writeFile(t, dir, "ghost.csv", fmt.Sprintf("action,room_id,user_id\njoin,%s,%s-ghost\n", public, p))
	st := e.applyJSON(t, dir, 1, "ghost.csv")
	if j := journalRows(t, filepath.Join(dir, st.Journal))[2]; j.Outcome != "failed" || !strings.Contains(j.Error, "does not exist") || st.Writes != 0 {
		t.Fatalf("ghost join: %+v %+v", st, j)
	}
}

func TestRoomDeleteAndPurgeHistory(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	gone := e.roomOf(t, owner, "Delete me "+p, "public_chat")
	shut := e.roomOf(t, owner, "Shut me "+p, "public_chat")
	hist := e.roomOf(t, owner, "History "+p, "public_chat")
	member := e.newUser(t, p+"-member", nil)
	if err := e.client.Join(ctx, gone, member); err != nil {
		t.Fatal(err)
	}
	e.roomSend(t, owner, hist, 3)
	cut := clockCut()
	e.roomSend(t, owner, hist, 2)

	writeFile(t, dir, "rooms.csv", fmt.Sprintf("action,room_id,block,purge,before,delete_local_events\n"+
		"delete-room,%s,true,,,\ndelete-room,%s,,false,,\npurge-history,%s,,,%d,true\n", gone, shut, hist, cut))

	// Destructive rows: nothing without --yes, and the plan names each room.
	r := e.synbatch(t, dir, "apply", "rooms.csv")
	if r.code != 2 || !strings.Contains(r.stderr, "delete-room 2 rooms, purge-history 1 room") {
		t.Fatalf("apply without --yes: %d\n%s", r.code, r.stderr)
	}
	plan := e.synbatch(t, dir, "plan", "rooms.csv")
	for _, want := range []string{
		fmt.Sprintf(`row 2 %s delete-room: update: room: "Delete me %s" (2 members) → deleted and purged, blocked`, gone, p),
		fmt.Sprintf(`row 3 %s delete-room: update: room: "Shut me %s" (1 member) → shut down (not purged)`, shut, p),
		fmt.Sprintf(`row 4 %s purge-history: update: room: "History %s" (1 member) → history before %s purged (local events deleted)`,
			hist, p, time.UnixMilli(cut).UTC().Format(time.RFC3339)),
	} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.stdout)
		}
	}
	e.applyRooms(t, dir, "rooms.csv", 3)

	if _, err := e.client.GetRoom(ctx, gone); !synapse.IsNotFound(err) {
		t.Errorf("the purged room is still there: %v", err)
	}
	if !e.blocked(t, gone) {
		t.Error("the deleted room is not blocked")
	}
	if tasks, _ := e.client.RoomDeleteTasks(ctx, gone); len(tasks) != 1 || tasks[0].Status != "complete" {
		t.Errorf("deletion tasks of the room: %+v", tasks)
	}
	if info, err := e.client.GetRoom(ctx, shut); err != nil || info.JoinedLocalMembers != 0 {
		t.Errorf("the shut room: %+v %v", info, err)
	}
	// Synapse 1.160 purges up to the newest event at or before the cut and
	// keeps that one (docs/fault-tier.md): at most one older event stays,
	// and both later ones.
	first, err := e.client.FirstEvents(ctx, hist, 10)
	older, later := 0, 0
	for _, ev := range first {
		if ev.OriginServerTS < cut {
			older++
		} else {
			later++
		}
	}
	if err != nil || older > 1 || later != 2 {
		t.Errorf("timeline after the purge (%d before the cut, %d after): %+v %v", older, later, first, err)
	}
	// With a new journal: every room already matches, nothing is sent.
	e.applyAgain(t, dir, "rooms.csv", "--yes")
	if tasks, _ := e.client.RoomDeleteTasks(ctx, gone); len(tasks) != 1 {
		t.Errorf("a second deletion was started: %+v", tasks)
	}
}

// TestRoomDeleteKilledWhilePollingResumesTheSameTask is acceptance 2: apply
// is killed -9 as soon as the journal holds the deletion's task id, while it
// polls; the same command again polls that task to the end, and the server
// shows one deletion.
func TestRoomDeleteKilledWhilePollingResumesTheSameTask(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	room := e.roomOf(t, owner, "Big room "+p, "public_chat")
	// Members and history make the deletion take a while: each local
	// member is kicked with an event of its own before the purge. Synapse
	// admits joins to one room one at a time, so the joins go a few at a
	// time: forty at once left the last waiting past the client's timeout
	// on a loaded CI machine.
	var g errgroup.Group
	g.SetLimit(4)
	for i := range 40 {
		g.Go(func() error {
			id := e.id(fmt.Sprintf("%s-m%d", p, i))
			if _, err := e.client.PutUser(ctx, id, map[string]any{}); err != nil {
				return err
			}
			return e.client.Join(ctx, room, id)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	e.roomSend(t, owner, room, 30)

	writeFile(t, dir, "del.csv", fmt.Sprintf("action,room_id,purge\ndelete-room,%s,true\n", room))
	task := e.killedTaskResumes(t, dir, "del.csv")
	tasks, err := e.client.RoomDeleteTasks(ctx, room)
	if err != nil || len(tasks) != 1 || tasks[0].DeleteID != task || tasks[0].Status != "complete" {
		t.Fatalf("deletion tasks of the room: %+v %v (want only %s, complete)", tasks, err, task)
	}
	if _, err := e.client.GetRoom(ctx, room); !synapse.IsNotFound(err) {
		t.Fatalf("the room is still there: %v", err)
	}
}

// killedTaskResumes applies a manifest of one row that starts a server
// task, kills apply -9 as soon as the journal holds the task's id (while it
// polls), and applies it again: the resumed run must finish the row by
// polling that task, with no write and no second task journaled. It
// returns the task id.
func (e *env) killedTaskResumes(t *testing.T, dir, manifest string) string {
	t.Helper()
	jpath := filepath.Join(dir, manifest+".journal.jsonl")
	task := e.killAtTask(t, dir, jpath, "apply", manifest, "--yes")
	t.Logf("killed with task %s", task)
	if len(journalRows(t, jpath)) != 0 {
		t.Fatal("the killed run journaled the row as finished: it was not killed while polling")
	}
	st := e.applyJSON(t, dir, 0, manifest, "--yes")
	if st.Outcomes["done"] != 1 || st.Writes != 0 {
		t.Fatalf("resume: %+v, want the row done by polling only (no write)", st)
	}
	if got := journalTask(t, jpath); got != task {
		t.Fatalf("the resumed run journaled task %s, the killed one %s", got, task)
	}
	if n := strings.Count(readFile(t, jpath), `"type":"task"`); n != 1 {
		t.Fatalf("%d task records: a second task was started", n)
	}
	return task
}

// killAtTask runs synbatch with args and kills it -9 as soon as the
// journal at jpath holds a task id, which it returns.
func (e *env) killAtTask(t *testing.T, dir, jpath string, args ...string) string {
	t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = dir
	cmd.Env = e.binEnv(dir, e.server)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var task string
	// A hang guard: through a fault proxy under CI's load the first task
	// can take a minute to be journaled.
	if !testenv.Await(5*time.Minute, func() bool { task = journalTask(t, jpath); return task != "" }) {
		cmd.Process.Kill()
		t.Fatal("no task record in the journal after five minutes")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return task
}

// journalTask returns the last task id in a journal, "" when there is none.
func journalTask(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	task := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r struct {
			Type string `json:"type"`
			Task string `json:"task"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Type == "task" {
			task = r.Task
		}
	}
	return task
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMediaQuarantineAndDelete covers the media rows; acceptance 3 is the
// first user: more uploads than the user media DELETE removes per call.
func TestMediaQuarantineAndDelete(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	many, quar, some := e.roomUser(t, p+"-many"), e.roomUser(t, p+"-quar"), e.roomUser(t, p+"-some")
	e.roomUpload(t, many, 130, 16) // Synapse deletes 100 a call
	e.roomUpload(t, quar, 3, 16)
	e.roomUpload(t, some, 2, 10)
	e.roomUpload(t, some, 2, 5000)

	// A protected file is never quarantined: it must not keep the row busy.
	protected := e.media(t, quar.id)[0].MediaID
	e.mustCall(t, http.MethodPost, "/_synapse/admin/v1/media/protect/"+protected, e.adminToken(t), map[string]any{}, nil)
	e.roomUpload(t, quar, 1, 16)

	writeFile(t, dir, "media.csv", fmt.Sprintf("action,user_id,min_size\ndelete-media,%s,\nquarantine-media,%s,\ndelete-media,%s,1000\n",
		many.id, quar.id, some.id))
	plan := e.synbatch(t, dir, "plan", "media.csv")
	for _, want := range []string{"media: 130 files, 2.1 kB → deleted", "media: 3 of 4 files not quarantined (48 B) → quarantined",
		"media: 2 files, 10.0 kB of at least 1.0 kB → deleted"} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.stdout)
		}
	}
	e.applyRooms(t, dir, "media.csv", 3)

	if left := e.media(t, many.id); len(left) != 0 {
		t.Errorf("%d of 130 files left", len(left))
	}
	for _, m := range e.media(t, quar.id) {
		if (m.QuarantinedBy == nil) != (m.MediaID == protected) {
			t.Errorf("%s: quarantined by %v (protected: %v)", m.MediaID, m.QuarantinedBy, m.MediaID == protected)
		}
	}
	if left := e.media(t, some.id); len(left) != 2 || left[0].MediaLength != 10 || left[1].MediaLength != 10 {
		t.Errorf("min_size 1000 left %+v, want the two small files", left)
	}
	e.applyAgain(t, dir, "media.csv", "--yes")
}

func TestExportRoomsWritesEveryRoom(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	plain := e.roomOf(t, owner, "Export "+p, "public_chat")
	// A name a spreadsheet would run as a formula.
	formula := e.roomOf(t, owner, "=HYPERLINK(\"http://x\") "+p, "private_chat")
	if err := e.client.SetRoomBlock(ctx, formula, true); err != nil {
		t.Fatal(err)
	}

	r := e.synbatch(t, dir, "export", "rooms", "--out", "rooms.csv", "--search", p, "--members")
	if r.code != 0 {
		t.Fatalf("export rooms: %d\n%s", r.code, r.stderr)
	}
	f, err := os.Open(filepath.Join(dir, "rooms.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "room_id,name,canonical_alias,joined_members,joined_local_members,creator,version,encryption,"+
		"federatable,public,join_rules,guest_access,history_visibility,state_events,room_type,blocked,blocked_by,members" {
		t.Fatalf("export:\n%v", recs)
	}
	rows := map[string][]string{}
	for _, rec := range recs[1:] {
		rows[rec[0]] = rec
	}
	admin := e.id("admin")
	if got := rows[plain]; got == nil || got[1] != "Export "+p || got[3] != "1" || got[5] != "'"+owner.id || got[10] != "public" ||
		got[15] != "false" || got[17] != "'"+owner.id {
		t.Errorf("the plain room: %q", got)
	}
	if got := rows[formula]; got == nil || got[1] != "'=HYPERLINK(\"http://x\") "+p || got[10] != "invite" || got[15] != "true" || got[16] != "'"+admin {
		t.Errorf("the formula room: %q", got)
	}

	// JSONL and XLSX from the same list; paging one room a page (next_batch).
	for _, out := range []string{"rooms.jsonl", "rooms.xlsx"} {
		if r := e.synbatch(t, dir, "export", "rooms", "--out", out, "--search", p); r.code != 0 || !strings.Contains(r.stderr, "exported 2 rooms") {
			t.Fatalf("export rooms --out %s: %d\n%s", out, r.code, r.stderr)
		}
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(dir, "rooms.jsonl"))))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["room_id"] == lines[1]["room_id"] {
		t.Fatalf("jsonl: %v", lines)
	}
	var buf bytes.Buffer
	res, err := export.Rooms(ctx, e.client, export.RoomsConfig{Out: "-", Format: "jsonl", Stdout: &buf, PageSize: 1,
		Filter: synapse.RoomFilter{Search: p}, Concurrency: 2})
	if err != nil || res.Rooms != 2 || strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("one room a page: %+v %v\n%s", res, err, buf.String())
	}
}
