package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/testenv"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/synapse"
)

// faultCase is one action's rows for the fault tier: prepare makes n fresh
// rows on the server and returns the manifest, the extra arguments, and a
// check that reads the server back for the action's intended effect, once.
type faultCase struct {
	prepare func(t *testing.T, e *env, n int) (manifest string, args []string, check func(t *testing.T))
}

// userFaultCase builds a faultCase of n fresh users: setup prepares each,
// cells are the row's cells after user_id,action, check reads each back.
func userFaultCase(action, columns string, args []string, setup func(t *testing.T, e *env, id, local string),
	cells func(local string) string, check func(t *testing.T, e *env, id, local string)) faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		var b strings.Builder
		b.WriteString("user_id,action")
		if columns != "" {
			b.WriteString("," + columns)
		}
		b.WriteString("\n")
		var ids, locals []string
		for range n {
			local := uniq(t)
			id := e.newUser(t, local, map[string]any{"password": "pw-" + local})
			if setup != nil {
				setup(t, e, id, local)
			}
			ids, locals = append(ids, id), append(locals, local)
			b.WriteString(local + "," + action)
			if columns != "" {
				b.WriteString("," + cells(local))
			}
			b.WriteString("\n")
		}
		return b.String(), args, func(t *testing.T) {
			for i := range ids {
				check(t, e, ids[i], locals[i])
			}
		}
	}}
}

func wantUserFlag(name string, get func(*synapse.User) bool, want bool) func(t *testing.T, e *env, id, local string) {
	return func(t *testing.T, e *env, id, local string) {
		if got := get(e.mustUser(t, id)); got != want {
			t.Errorf("%s: %s = %v, want %v", id, name, got, want)
		}
	}
}

// faultCases has a case for every write action; TestEveryActionExactlyOnce
// UnderFaults fails for an action of the registry missing here (or listed
// in faultCasesMissing without being missing).
func faultCases() map[jobs.Action]faultCase {
	ctx := context.Background()
	set := func(f func(e *env, id string) error) func(t *testing.T, e *env, id, local string) {
		return func(t *testing.T, e *env, id, local string) {
			if err := f(e, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	return map[jobs.Action]faultCase{
		"update": userFaultCase("update", "displayname", nil, nil, func(l string) string { return "Name " + l },
			func(t *testing.T, e *env, id, local string) {
				if u := e.mustUser(t, id); u.Displayname == nil || *u.Displayname != "Name "+local {
					t.Errorf("%s: display name %v", id, u.Displayname)
				}
			}),
		"set-external-ids": userFaultCase("set-external-ids", "external_ids", nil, nil, func(l string) string { return "oidc:sub-" + l },
			func(t *testing.T, e *env, id, local string) {
				if got := idsOf(e.mustUser(t, id)); !slices.Equal(got, []string{"oidc:sub-" + local}) {
					t.Errorf("%s: external ids %v", id, got)
				}
			}),
		"remove-external-ids": userFaultCase("remove-external-ids", "external_ids", []string{"--yes"},
			func(t *testing.T, e *env, id, local string) {
				mustPut(t, e, id, map[string]any{"external_ids": []map[string]string{
					{"auth_provider": "oidc", "external_id": "gone-" + local}, {"auth_provider": "cas", "external_id": "kept-" + local}}})
			}, func(l string) string { return "oidc:gone-" + l },
			func(t *testing.T, e *env, id, local string) {
				if got := idsOf(e.mustUser(t, id)); !slices.Equal(got, []string{"cas:kept-" + local}) {
					t.Errorf("%s: external ids %v", id, got)
				}
			}),
		"delete-devices": userFaultCase("delete-devices", "devices", []string{"--yes"},
			func(t *testing.T, e *env, id, local string) { e.addDevices(t, id, "DEVA", "DEVB", "DEVC") },
			func(string) string { return "DEVA;DEVB" },
			func(t *testing.T, e *env, id, local string) {
				if got := e.devices(t, id); !slices.Equal(got, []string{"DEVC"}) {
					t.Errorf("%s: devices %v", id, got)
				}
			}),
		"deactivate": userFaultCase("deactivate", "erase", []string{"--yes"}, nil, func(string) string { return "false" },
			wantUserFlag("deactivated", func(u *synapse.User) bool { return bool(u.Deactivated) }, true)),
		"shadow-ban": userFaultCase("shadow-ban", "", nil, nil, nil,
			wantUserFlag("shadow_banned", func(u *synapse.User) bool { return bool(u.ShadowBan) }, true)),
		"unshadow-ban": userFaultCase("unshadow-ban", "", nil,
			set(func(e *env, id string) error { return e.client.SetShadowBan(ctx, id, true) }), nil,
			wantUserFlag("shadow_banned", func(u *synapse.User) bool { return bool(u.ShadowBan) }, false)),
		"lock": userFaultCase("lock", "", nil, nil, nil,
			wantUserFlag("locked", func(u *synapse.User) bool { return bool(u.Locked) }, true)),
		"unlock": userFaultCase("unlock", "", nil,
			func(t *testing.T, e *env, id, local string) { mustPut(t, e, id, map[string]any{"locked": true}) }, nil,
			wantUserFlag("locked", func(u *synapse.User) bool { return bool(u.Locked) }, false)),
		"suspend": userFaultCase("suspend", "", nil, nil, nil,
			wantUserFlag("suspended", func(u *synapse.User) bool { return bool(u.Suspended) }, true)),
		"unsuspend": userFaultCase("unsuspend", "", nil,
			set(func(e *env, id string) error { return e.client.SetSuspended(ctx, id, true) }), nil,
			wantUserFlag("suspended", func(u *synapse.User) bool { return bool(u.Suspended) }, false)),
		"set-ratelimit": userFaultCase("set-ratelimit", "messages_per_second,burst_count", nil, nil, func(string) string { return "7,30" },
			func(t *testing.T, e *env, id, local string) {
				if got := e.ratelimit(t, id); got != "7/30" {
					t.Errorf("%s: rate limit %s", id, got)
				}
			}),
		"delete-ratelimit": userFaultCase("delete-ratelimit", "", nil,
			set(func(e *env, id string) error { return e.client.SetRatelimit(ctx, id, 3, 4) }), nil,
			func(t *testing.T, e *env, id, local string) {
				if got := e.ratelimit(t, id); got != "none" {
					t.Errorf("%s: rate limit %s", id, got)
				}
			}),
		"notice": userFaultCase("notice", "message", nil, nil, func(l string) string { return "Fault tier notice " + l },
			func(t *testing.T, e *env, id, local string) {
				if n := e.notices(t, id, "Fault tier notice "+local); n != 1 {
					t.Errorf("%s: %d notices, want exactly 1", id, n)
				}
			}),
		"create": newUsersCase("create"),
		"upsert": newUsersCase("upsert"),
		"reset-password": userFaultCase("reset-password", "password", []string{"--yes"}, nil, func(l string) string { return "new-pw-" + l },
			func(t *testing.T, e *env, id, local string) {
				if tok := e.loginDevice(t, local, "new-pw-"+local, "FAULTCHECK"); tok == "" {
					t.Errorf("%s: the new password does not log in", id)
				}
			}),
		"reactivate": userFaultCase("reactivate", "password", nil,
			set(func(e *env, id string) error { return e.client.Deactivate(ctx, id, false) }),
			func(l string) string { return "back-pw-" + l },
			func(t *testing.T, e *env, id, local string) {
				wantUserFlag("deactivated", func(u *synapse.User) bool { return bool(u.Deactivated) }, false)(t, e, id, local)
				if tok := e.loginDevice(t, local, "back-pw-"+local, "FAULTCHECK"); tok == "" {
					t.Errorf("%s: the password does not log in", id)
				}
			}),
		"join-rooms": {prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
			room, _ := e.sharedRoom(t, "faults")
			return userFaultCase("join-rooms", "rooms", nil, nil, func(string) string { return room },
				func(t *testing.T, e *env, id, local string) {
					if got := e.joinedRooms(t, id); !slices.Equal(got, []string{room}) {
						t.Errorf("%s: rooms %v, want %s", id, got, room)
					}
				}).prepare(t, e, n)
		}},
		"join": {prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
			room, _ := e.sharedRoom(t, "faults")
			var b strings.Builder
			b.WriteString("action,room_id,user_id\n")
			// One row: a room is on one row, which takes several users.
			var ids, locals []string
			for range n {
				local := uniq(t)
				ids, locals = append(ids, e.newUser(t, local, nil)), append(locals, local)
			}
			fmt.Fprintf(&b, "join,%s,%s\n", room, strings.Join(locals, ";"))
			return b.String(), nil, func(t *testing.T) {
				for _, id := range ids {
					if got := e.joinedRooms(t, id); !slices.Equal(got, []string{room}) {
						t.Errorf("%s: rooms %v, want %s", id, got, room)
					}
				}
			}
		}},
		"delete-media":     mediaCase("delete-media"),
		"quarantine-media": mediaCase("quarantine-media"),
		"delete-room": {prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
			owner := e.roomUser(t, uniq(t)+"-owner")
			var b strings.Builder
			b.WriteString("action,room_id,purge\n")
			var rooms []string
			for i := range n {
				room := e.roomOf(t, owner, fmt.Sprintf("Fault delete %d", i), "public_chat")
				rooms = append(rooms, room)
				fmt.Fprintf(&b, "delete-room,%s,true\n", room)
			}
			return b.String(), []string{"--yes"}, func(t *testing.T) {
				ctx := context.Background()
				for _, r := range rooms {
					if _, err := e.client.GetRoom(ctx, r); !synapse.IsNotFound(err) {
						t.Errorf("%s: still there (%v)", r, err)
					}
					if tasks, err := e.client.RoomDeleteTasks(ctx, r); err != nil || len(tasks) != 1 {
						t.Errorf("%s: deletion tasks %+v (%v), want exactly one", r, tasks, err)
					}
				}
			}
		}},
		"redact":          redactCase(),
		"make-room-admin": makeRoomAdminCase(),
		"purge-history":   purgeHistoryCase(),
		"block":           roomFlagCase("block", true),
		"unblock":         roomFlagCase("unblock", false),
		"registration-token": {prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
			var b strings.Builder
			b.WriteString("action,token,uses_allowed\n")
			var toks []string
			for range n {
				tok := "ft-" + uniq(t)
				toks = append(toks, tok)
				fmt.Fprintf(&b, "registration-token,%s,3\n", tok)
			}
			return b.String(), nil, func(t *testing.T) {
				for _, tok := range toks {
					if found, uses, _ := e.regToken(t, tok); !found || uses == nil || *uses != 3 {
						t.Errorf("token %s: found %v, uses %v", tok, found, uses)
					}
				}
			}
		}},
	}
}

// newUsersCase creates (or upserts) n users who do not exist yet, each with
// a display name and a password, read back with both.
func newUsersCase(action string) faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		var b strings.Builder
		b.WriteString("user_id,action,displayname,password\n")
		var locals []string
		for range n {
			local := uniq(t)
			locals = append(locals, local)
			fmt.Fprintf(&b, "%s,%s,New %s,pw-%s\n", local, action, local, local)
		}
		return b.String(), nil, func(t *testing.T) {
			for _, local := range locals {
				u := e.mustUser(t, e.id(local))
				if u.Displayname == nil || *u.Displayname != "New "+local {
					t.Errorf("%s: display name %v", local, u.Displayname)
				}
				if tok := e.loginDevice(t, local, "pw-"+local, "FAULTCHECK"); tok == "" {
					t.Errorf("%s: the password does not log in", local)
				}
			}
		}
	}}
}

// mediaCase gives each of n fresh users two uploads, and deletes or
// quarantines them: read back, none is left, or every one is quarantined.
func mediaCase(action string) faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		var b strings.Builder
		b.WriteString("action,user_id\n")
		var ids []string
		for range n {
			u := e.roomUser(t, uniq(t))
			e.roomUpload(t, u, 2, 16)
			ids = append(ids, u.id)
			fmt.Fprintf(&b, "%s,%s\n", action, u.id)
		}
		return b.String(), []string{"--yes"}, func(t *testing.T) {
			for _, id := range ids {
				ms := e.media(t, id)
				switch {
				case action == "delete-media" && len(ms) != 0:
					t.Errorf("%s: %d files left", id, len(ms))
				case action == "quarantine-media" && len(ms) != 2:
					t.Errorf("%s: %d files, want the 2 uploaded", id, len(ms))
				}
				for _, m := range ms {
					if action == "quarantine-media" && m.QuarantinedBy == nil {
						t.Errorf("%s: %s not quarantined", id, m.MediaID)
					}
				}
			}
		}
	}}
}

// roomFlagCase blocks or unblocks rooms this server never saw (a block
// needs no room to exist), read back with the block status.
func roomFlagCase(action string, want bool) faultCase {
	return faultCase{prepare: func(t *testing.T, e *env, n int) (string, []string, func(t *testing.T)) {
		var b strings.Builder
		b.WriteString("action,room_id\n")
		var rooms []string
		for range n {
			room := "!" + uniq(t) + "ft:" + e.serverName
			if !want {
				if err := e.client.SetRoomBlock(context.Background(), room, true); err != nil {
					t.Fatal(err)
				}
			}
			rooms = append(rooms, room)
			fmt.Fprintf(&b, "%s,%s\n", action, room)
		}
		return b.String(), nil, func(t *testing.T) {
			for _, r := range rooms {
				if got := e.blocked(t, r); got != want {
					t.Errorf("%s: blocked %v, want %v", r, got, want)
				}
			}
		}
	}}
}

// faultCasesMissing are the actions this tier does not cover yet; each is
// named so that covering it (or adding an action) changes this list.
var faultCasesMissing = []jobs.Action{}

// TestEveryActionExactlyOnceUnderFaults is issue 19's fault tier: each
// write action's rows (three, fresh) applied once through a proxy in front
// of the real Synapse that loses the answer to the first write (forwarded,
// then the connection reset) and gives 30% of the others a 429, a 503, a
// 504 after forwarding or a reset before or after forwarding, and once killed with -9
// after its first write reached Synapse and before its answer came back,
// then resumed: each time the server, read
// back, holds the action's effect exactly once (one notice per user, one
// token per row). The table is keyed by the action registry.
func TestEveryActionExactlyOnceUnderFaults(t *testing.T) {
	e := realServer(t)
	t.Parallel()
	cases := faultCases()
	for _, a := range jobs.Actions() {
		_, has := cases[a]
		if missing := slices.Contains(faultCasesMissing, a); has == missing {
			t.Errorf("action %s: a fault case %v, listed as missing %v", a, has, missing)
		}
	}
	for a, c := range cases {
		t.Run(string(a)+"/faults", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			manifest, args, check := c.prepare(t, e, 3)
			writeFile(t, dir, "m.csv", manifest)
			p := newFaultProxy(t, e.server, 0.30, allFaults...)
			// Every case meets at least one lost answer: its first write
			// reaches Synapse and the connection is reset after it.
			front := loseFirstAnswer(t, p, func() {})
			st := settle(t, e.via(front.URL), dir, a, append([]string{"m.csv", "--concurrency", "2"}, args...))
			if rows := strings.Count(manifest, "\n") - 1; st.Resumed+st.Outcomes["done"] != rows {
				t.Fatalf("outcomes %v", st.Outcomes)
			}
			check(t)
		})
		t.Run(string(a)+"/kill-9", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			manifest, args, check := c.prepare(t, e, 3)
			writeFile(t, dir, "m.csv", manifest)
			// The run's first write reaches Synapse and its answer is held
			// until the run is killed: the kill always comes after a write
			// landed and before the run learned it, however fast the action
			// (polling the journal missed runs that ended within a poll).
			p := newFaultProxy(t, e.server, 0)
			held, release := make(chan struct{}), make(chan struct{})
			front := loseFirstAnswer(t, p, func() {
				close(held)
				<-release
			})
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release)
				}
			})
			cmd := exec.Command(e.bin, append([]string{"apply", "m.csv", "--concurrency", "1"}, args...)...)
			cmd.Dir = dir
			cmd.Env = e.binEnv(dir, front.URL)
			if err := testenv.KillWhen(cmd, held, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			close(release)
			st := settle(t, e.via(front.URL), dir, a, append([]string{"m.csv"}, args...))
			if rows := strings.Count(manifest, "\n") - 1; st.Resumed+st.Outcomes["done"]+st.Outcomes["unchanged"] != rows {
				t.Fatalf("resume: %+v", st)
			}
			check(t)
		})
	}
}

// loseFirstAnswer is a server in front of p that forwards the first write
// to Synapse, calls wait, and then resets the connection: the write lands
// and its answer is lost. Every other request goes through p.
func loseFirstAnswer(t *testing.T, p *faultProxy, wait func()) *httptest.Server {
	var once sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		if r.Method != http.MethodGet {
			once.Do(func() { first = true })
		}
		if !first {
			p.ServeHTTP(w, r)
			return
		}
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		wait()
		resetConn(w)
	}))
	t.Cleanup(front.Close)
	return front
}

// passwordActions write a password to an account that exists: a lost
// answer the login check cannot confirm (the write had not landed when it
// checked) leaves the row uncertain, by design never resent on its own
// (RELIABILITY.md). For them a run may end uncertain; the settling run
// sends those rows again on purpose with --resend-uncertain.
var passwordActions = []jobs.Action{"reset-password", "reactivate"}

// settle applies args; for a password action a run that ends with rows
// uncertain (and none failed) is followed by one with --resend-uncertain.
// It returns the last run's stats, which must exit 0.
func settle(t *testing.T, e *env, dir string, a jobs.Action, args []string) stats {
	t.Helper()
	if !slices.Contains(passwordActions, a) {
		return e.applyJSON(t, dir, 0, args...)
	}
	r := e.synbatch(t, dir, append([]string{"apply", "--output", "json"}, args...)...)
	if r.code == 0 {
		var st stats
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("apply output is not JSON: %v\n%s", err, r.stdout)
		}
		return st
	}
	if r.code != 1 || strings.Contains(r.stdout, `"failed"`) || !strings.Contains(r.stdout, `"uncertain"`) {
		t.Fatalf("apply: exit %d, want 0 or 1 with rows uncertain\n%s%s", r.code, r.stdout, r.stderr)
	}
	return e.applyJSON(t, dir, 0, append(args, "--resend-uncertain")...)
}
