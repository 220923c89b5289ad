package jobs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// routes is a scripted server: "METHOD /path" (with ?type=T for a room's
// state) answers its body, "404" or "NNN body" for another status. A GET it
// does not know is a 404 (a state type it does not know has no events); a
// write it does not know is 200 {}. Writes are recorded.
type routes struct {
	mu     sync.Mutex
	answer map[string]string
	writes []string
}

func (s *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	if t := r.URL.Query().Get("type"); t != "" {
		key += "?type=" + t
	}
	if r.Method != http.MethodGet {
		s.writes = append(s.writes, key)
	}
	body, ok := s.answer[key]
	if !ok && strings.Contains(key, "?type=") {
		body, ok = `{"state":[]}`, true // a room's state has no event of that type
	}
	switch {
	case !ok && r.Method == http.MethodGet, body == "404":
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"not found"}`))
		return
	case !ok:
		body = "{}"
	}
	if len(body) > 4 && body[3] == ' ' && body[0] >= '1' && body[0] <= '5' {
		var code int
		for _, c := range body[:3] {
			code = code*10 + int(c-'0')
		}
		w.WriteHeader(code)
		body = body[4:]
	}
	w.Write([]byte(body))
}

const (
	userA     = "GET /_synapse/admin/v2/users/@a:hs"
	activeA   = `{"name":"@a:hs","displayname":"A","admin":false}`
	roomR     = "GET /_synapse/admin/v1/rooms/!r:hs"
	roomInfo  = `{"room_id":"!r:hs","name":"Lobby","joined_members":2,"joined_local_members":2,"join_rules":"public"}`
	membersR  = "GET /_synapse/admin/v1/rooms/!r:hs/members"
	createEvR = "GET /_synapse/admin/v1/rooms/!r:hs/state?type=m.room.create"
	plsR      = "GET /_synapse/admin/v1/rooms/!r:hs/state?type=m.room.power_levels"
)

// TestEveryActionPlans runs each action's plan against a scripted server:
// what it reads decides whether it writes, and what.
func TestEveryActionPlans(t *testing.T) {
	for _, c := range []struct {
		name   string
		row    []string
		answer map[string]string
		kind   Kind
		writes []string
		change string // a substring of the plan's changes or reason
		err    string
	}{
		{"create new", []string{"action", "create", "user_id", "a", "displayname", "A", "emails", "a@x.org", "external_ids", "oidc:1", "rooms", "!r:hs"},
			map[string]string{roomR: roomInfo}, KindCreate,
			[]string{"PUT /_synapse/admin/v2/users/@a:hs", "POST /_synapse/admin/v1/join/!r:hs"}, "displayname: (none) → A", ""},
		{"create exists, skipped", []string{"action", "create", "user_id", "a"}, map[string]string{userA: activeA}, KindSkip, nil, "user exists", ""},
		{"update missing", []string{"action", "update", "user_id", "a"}, nil, "", nil, "", "does not exist (action update"},
		{"update changes", []string{"action", "update", "user_id", "a", "displayname", "B", "admin", "yes", "clear", "avatar_url"},
			map[string]string{userA: `{"name":"@a:hs","displayname":"A","avatar_url":"mxc://hs/x"}`}, KindUpdate,
			[]string{"PUT /_synapse/admin/v2/users/@a:hs"}, "displayname: A → B", ""},
		{"update same", []string{"action", "update", "user_id", "a", "displayname", "A"}, map[string]string{userA: activeA}, KindUnchanged, nil, "", ""},
		{"upsert taken email", []string{"action", "upsert", "user_id", "a", "emails", "b@x.org"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/threepid/email/users/b@x.org": `{"user_id":"@b:hs"}`}, "", nil, "", "belongs to @b:hs"},
		{"upsert deactivated changed", []string{"action", "upsert", "user_id", "a", "displayname", "B"},
			map[string]string{userA: `{"name":"@a:hs","deactivated":true}`}, "", nil, "", "reactivate it before"},
		{"reset-password", []string{"action", "reset-password", "user_id", "a", "password", "pw", "logout_devices", "no"},
			map[string]string{userA: activeA}, KindUpdate, []string{"POST /_synapse/admin/v1/reset_password/@a:hs"}, "devices stay logged in", ""},
		{"reset-password deactivated", []string{"action", "reset-password", "user_id", "a", "password", "pw"},
			map[string]string{userA: `{"deactivated":true}`}, "", nil, "", "is deactivated"},
		{"set-external-ids", []string{"action", "set-external-ids", "user_id", "a", "external_ids", "oidc:1"},
			map[string]string{userA: activeA}, KindUpdate, []string{"PUT /_synapse/admin/v2/users/@a:hs"}, "oidc:1", ""},
		{"set-external-ids there", []string{"action", "set-external-ids", "user_id", "a", "external_ids", "oidc:1"},
			map[string]string{userA: `{"external_ids":[{"auth_provider":"oidc","external_id":"1"}]}`}, KindUnchanged, nil, "", ""},
		{"remove-external-ids", []string{"action", "remove-external-ids", "user_id", "a", "external_ids", "oidc:1"},
			map[string]string{userA: `{"external_ids":[{"auth_provider":"oidc","external_id":"1"},{"auth_provider":"saml","external_id":"2"}]}`},
			KindUpdate, []string{"PUT /_synapse/admin/v2/users/@a:hs"}, "saml:2", ""},
		{"delete-devices", []string{"action", "delete-devices", "user_id", "a", "devices", "D1;D9"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v2/users/@a:hs/devices": `{"devices":[{"device_id":"D1"},{"device_id":"D2"}]}`},
			KindUpdate, []string{"POST /_synapse/admin/v2/users/@a:hs/delete_devices"}, "D1", ""},
		{"deactivate and erase", []string{"action", "deactivate", "user_id", "a", "erase", "true"},
			map[string]string{userA: `{"deactivated":true}`}, KindUpdate, []string{"POST /_synapse/admin/v1/deactivate/@a:hs"}, "deactivated and erased", ""},
		{"deactivate done", []string{"action", "deactivate", "user_id", "a"}, map[string]string{userA: `{"deactivated":true}`}, KindUnchanged, nil, "", ""},
		{"reactivate", []string{"action", "reactivate", "user_id", "a", "password", "pw"},
			map[string]string{userA: `{"deactivated":true}`}, KindUpdate, []string{"PUT /_synapse/admin/v2/users/@a:hs"}, "password: set", ""},
		{"reactivate active", []string{"action", "reactivate", "user_id", "a"}, map[string]string{userA: activeA}, KindUnchanged, nil, "", ""},
		{"join-rooms by alias", []string{"action", "join-rooms", "user_id", "a", "rooms", "#lobby:hs;!in:hs"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/joined_rooms": `{"joined_rooms":["!in:hs"]}`,
				"GET /_matrix/client/v3/directory/room/#lobby:hs": `{"room_id":"!r:hs"}`, roomR: roomInfo},
			KindUpdate, []string{"POST /_synapse/admin/v1/join/#lobby:hs"}, "join #lobby:hs", ""},
		{"join-rooms unknown", []string{"action", "join-rooms", "user_id", "a", "rooms", "!nope:hs"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/joined_rooms": `{"joined_rooms":[]}`}, "", nil, "", "not known to this server"},
		{"shadow-ban", []string{"action", "shadow-ban", "user_id", "a"}, map[string]string{userA: activeA}, KindUpdate,
			[]string{"POST /_synapse/admin/v1/users/@a:hs/shadow_ban"}, "shadow_banned: false → true", ""},
		{"unshadow-ban", []string{"action", "unshadow-ban", "user_id", "a"}, map[string]string{userA: `{"shadow_banned":true}`}, KindUpdate,
			[]string{"DELETE /_synapse/admin/v1/users/@a:hs/shadow_ban"}, "true → false", ""},
		{"lock", []string{"action", "lock", "user_id", "a"}, map[string]string{userA: activeA}, KindUpdate,
			[]string{"PUT /_synapse/admin/v2/users/@a:hs"}, "locked: false → true", ""},
		{"unlock unlocked", []string{"action", "unlock", "user_id", "a"}, map[string]string{userA: activeA}, KindUnchanged, nil, "", ""},
		{"suspend", []string{"action", "suspend", "user_id", "a"}, map[string]string{userA: activeA}, KindUpdate,
			[]string{"PUT /_synapse/admin/v1/suspend/@a:hs"}, "suspended: false → true", ""},
		{"suspend suspended", []string{"action", "suspend", "user_id", "a"}, map[string]string{userA: `{"suspended":true}`}, KindUnchanged, nil, "", ""},
		{"suspend deactivated", []string{"action", "suspend", "user_id", "a"}, map[string]string{userA: `{"deactivated":true}`}, "", nil, "", "is deactivated"},
		{"unsuspend", []string{"action", "unsuspend", "user_id", "a"}, map[string]string{userA: `{"suspended":true}`}, KindUpdate,
			[]string{"PUT /_synapse/admin/v1/suspend/@a:hs"}, "suspended: true → false", ""},
		{"unsuspend not suspended", []string{"action", "unsuspend", "user_id", "a"}, map[string]string{userA: activeA}, KindUnchanged, nil, "", ""},
		{"set-ratelimit", []string{"action", "set-ratelimit", "user_id", "a", "messages_per_second", "5"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/override_ratelimit": `{"burst_count":7}`}, KindUpdate,
			[]string{"POST /_synapse/admin/v1/users/@a:hs/override_ratelimit"}, "5/s burst 7", ""},
		{"delete-ratelimit", []string{"action", "delete-ratelimit", "user_id", "a"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/override_ratelimit": `{"messages_per_second":1,"burst_count":1}`}, KindUpdate,
			[]string{"DELETE /_synapse/admin/v1/users/@a:hs/override_ratelimit"}, "server default", ""},
		{"delete-ratelimit none", []string{"action", "delete-ratelimit", "user_id", "a"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/override_ratelimit": `{}`}, KindUnchanged, nil, "", ""},
		{"block", []string{"action", "block", "room_id", "!r:hs"},
			map[string]string{"GET /_synapse/admin/v1/rooms/!r:hs/block": `{"block":false}`, roomR: roomInfo}, KindUpdate,
			[]string{"PUT /_synapse/admin/v1/rooms/!r:hs/block"}, `"Lobby" (2 members)`, ""},
		{"unblock unblocked", []string{"action", "unblock", "room_id", "!r:hs"},
			map[string]string{"GET /_synapse/admin/v1/rooms/!r:hs/block": `{"block":false}`}, KindUnchanged, nil, "already unblocked", ""},
		{"delete-room", []string{"action", "delete-room", "room_id", "!r:hs", "purge", "false", "block", "true"},
			map[string]string{roomR: roomInfo, "GET /_synapse/admin/v1/rooms/!r:hs/block": `{"block":false}`,
				"DELETE /_synapse/admin/v2/rooms/!r:hs": `{"delete_id":"d1"}`, "GET /_synapse/admin/v2/rooms/delete_status/d1": `{"status":"complete"}`},
			KindUpdate, []string{"DELETE /_synapse/admin/v2/rooms/!r:hs"}, "shut down (not purged), blocked", ""},
		{"delete-room gone", []string{"action", "delete-room", "room_id", "!r:hs"}, nil, KindSkip, nil, "room not known", ""},
		{"delete-room by lost alias", []string{"action", "delete-room", "room_id", "#gone:hs"}, nil, "", nil, "", "name rooms by id"},
		{"make-room-admin", []string{"action", "make-room-admin", "room_id", "!r:hs", "user_id", "a"},
			map[string]string{roomR: roomInfo, userA: activeA, membersR: `{"members":["@owner:hs"]}`,
				createEvR: `{"state":[{"sender":"@owner:hs","content":{"room_version":"10"}}]}`,
				plsR:      `{"state":[{"content":{"users":{"@owner:hs":100,"@a:hs":"50"}}}]}`},
			KindUpdate, []string{"POST /_synapse/admin/v1/rooms/!r:hs/make_room_admin"}, "power level 50 → 100), invited", ""},
		{"make-room-admin creator v12", []string{"action", "make-room-admin", "room_id", "!r:hs", "user_id", "a"},
			map[string]string{roomR: roomInfo, userA: activeA, membersR: `{"members":["@a:hs"]}`,
				createEvR: `{"state":[{"sender":"@a:hs","content":{"room_version":"12"}}]}`, plsR: `{"state":[{"content":{"users":{}}}]}`},
			KindUnchanged, nil, "is a creator of the room", ""},
		{"make-room-admin nobody", []string{"action", "make-room-admin", "room_id", "!r:hs", "user_id", "a"},
			map[string]string{roomR: roomInfo, userA: activeA, membersR: `{"members":[]}`,
				createEvR: `{"state":[{"sender":"@x:other","content":{"room_version":"10"}}]}`},
			"", nil, "", "no local admin user"},
		{"join", []string{"action", "join", "room_id", "!r:hs", "user_id", "a"},
			map[string]string{roomR: roomInfo, userA: activeA, membersR: `{"members":[]}`}, KindUpdate,
			[]string{"POST /_synapse/admin/v1/join/!r:hs"}, "@a:hs joins", ""},
		{"join joined", []string{"action", "join", "room_id", "!r:hs", "user_id", "a"},
			map[string]string{roomR: roomInfo, membersR: `{"members":["@a:hs"]}`}, KindUnchanged, nil, "already joined", ""},
		{"purge-history", []string{"action", "purge-history", "room_id", "!r:hs", "before", "2026-01-31"},
			map[string]string{roomR: roomInfo, "GET /_synapse/admin/v1/rooms/!r:hs/messages": `{"chunk":[{"origin_server_ts":1},{"origin_server_ts":2}]}`,
				"POST /_synapse/admin/v1/purge_history/!r:hs": `{"purge_id":"p1"}`, "GET /_synapse/admin/v1/purge_history_status/p1": `{"status":"complete"}`},
			KindUpdate, []string{"POST /_synapse/admin/v1/purge_history/!r:hs"}, "only hidden", ""},
		{"purge-history nothing", []string{"action", "purge-history", "room_id", "!r:hs", "before", "2026-01-31"},
			map[string]string{roomR: roomInfo, "GET /_synapse/admin/v1/rooms/!r:hs/messages": `{"chunk":[{"origin_server_ts":1}]}`},
			KindUnchanged, nil, "no history before", ""},
		// Synapse 1.160 keeps a room's newest event before the point: a
		// room purged already starts with one older event, then newer ones.
		{"purge-history purged", []string{"action", "purge-history", "room_id", "!r:hs", "before", "2026-01-31"},
			map[string]string{roomR: roomInfo, "GET /_synapse/admin/v1/rooms/!r:hs/messages": `{"chunk":[{"origin_server_ts":1},{"origin_server_ts":1900000000000}]}`},
			KindUnchanged, nil, "no history before", ""},
		// A purge running already (a lost answer's) is polled, not started again.
		{"purge-history running", []string{"action", "purge-history", "room_id", "!r:hs", "before", "2026-01-31"},
			map[string]string{roomR: roomInfo, "GET /_synapse/admin/v1/rooms/!r:hs/messages": `{"chunk":[{"origin_server_ts":1},{"origin_server_ts":2}]}`,
				"GET /_synapse/admin/v1/scheduled_tasks":         `{"scheduled_tasks":[{"id":"p9","status":"active"}]}`,
				"GET /_synapse/admin/v1/purge_history_status/p9": `{"status":"complete"}`},
			KindUpdate, nil, "purge p9 running", ""},
		{"quarantine-media", []string{"action", "quarantine-media", "user_id", "a"},
			map[string]string{"GET /_synapse/admin/v1/users/@a:hs/media": `{"media":[{"media_id":"m1","media_length":2000},{"media_id":"m2","quarantined_by":"@x:hs"}]}`},
			KindUpdate, []string{"POST /_synapse/admin/v1/user/@a:hs/media/quarantine"}, "1 of 2 files not quarantined (2.0 kB)", ""},
		{"delete-media filtered", []string{"action", "delete-media", "user_id", "a", "min_size", "1000"},
			map[string]string{"GET /_synapse/admin/v1/users/@a:hs/media": `{"media":[{"media_id":"m1","media_length":2000},{"media_id":"m2","media_length":5}]}`},
			KindUpdate, []string{"DELETE /_synapse/admin/v1/media/hs/m1"}, "of at least 1.0 kB", ""},
		{"delete-media none", []string{"action", "delete-media", "user_id", "a"},
			map[string]string{"GET /_synapse/admin/v1/users/@a:hs/media": `{"media":[]}`}, KindUnchanged, nil, "no media to delete", ""},
		{"delete-media no user", []string{"action", "delete-media", "user_id", "a"}, nil, "", nil, "", "does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, j, env := scripted(t, c.answer, c.row...)
			p, err := j.Plan(context.Background(), env, &State{})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("plan error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(srv.writes) > 0 {
				t.Fatalf("the plan wrote: %v", srv.writes)
			}
			var said []string
			for _, ch := range p.Changes {
				said = append(said, ch.String())
			}
			text := strings.Join(said, "; ") + " | " + p.Reason
			if p.Kind != c.kind || !strings.Contains(text, c.change) {
				t.Fatalf("plan %s %q, want %s with %q", p.Kind, text, c.kind, c.change)
			}
			res, err := j.Run(context.Background(), env, &State{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(srv.writes, c.writes) {
				t.Fatalf("writes %v, want %v", srv.writes, c.writes)
			}
			want := journal.Done
			switch p.Kind {
			case KindUnchanged:
				want = journal.Unchanged
			case KindSkip:
				want = journal.Skipped
			}
			if res.Outcome != want {
				t.Fatalf("outcome %s, want %s", res.Outcome, want)
			}
		})
	}
}

// scripted parses a row and gives it a client of a scripted server that
// answers as answer says; the server stops with the test.
func scripted(t *testing.T, answer map[string]string, kv ...string) (*routes, *Job, Env) {
	t.Helper()
	srv := &routes{answer: answer}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	cl, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	j, probs := Parse(row(kv...), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return srv, j, Env{Client: cl, OnExists: ExistsSkip, Rooms: &RoomChecks{}}
}

// TestCreateOfANameTheServerRefusesIsAConflict: plan asks username_available
// before a create (or upsert) row makes an account; a name the server
// refuses, or one a deactivated account holds, is a conflict with the
// server's reason. Apply does not ask: Synapse's create runs the same check
// and refuses, and that refusal is the same conflict, nothing created. A
// server without the API (404) plans the create as before.
func TestCreateOfANameTheServerRefusesIsAConflict(t *testing.T) {
	const (
		avail = "GET /_synapse/admin/v1/username_available"
		put   = "PUT /_synapse/admin/v2/users/@a:hs"
	)
	for _, c := range []struct {
		name, action  string
		refusal, user string // username_available's (and the create's) 400, the user's GET ("": 404)
		kind          Kind
		reason        string
	}{
		{"other case", "create", `400 {"errcode":"M_USER_IN_USE","error":"User ID already taken."}`, "", KindConflict, "same name in other letter case"},
		{"appservice", "upsert", `400 {"errcode":"M_EXCLUSIVE","error":"This user ID is reserved by an application service."}`, "", KindConflict, "reserved by an application service"},
		{"invalid", "create", `400 {"errcode":"M_INVALID_USERNAME","error":"User ID may not begin with _"}`, "", KindConflict, "may not begin with _"},
		{"deactivated", "create", "", `{"name":"@a:hs","deactivated":true}`, KindConflict, "taken by a deactivated account"},
		{"available", "create", "", "", KindCreate, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer := map[string]string{avail: `{"available":true}`}
			if c.refusal != "" {
				answer[avail], answer[put] = c.refusal, c.refusal
			}
			if c.user != "" {
				answer[userA] = c.user
			}
			srv, j, env := scripted(t, answer, "action", c.action, "user_id", "a", "displayname", "A")
			env.CheckNames = true
			for _, on := range []OnExists{ExistsSkip, ExistsUpdate, ExistsFail} {
				env.OnExists = on
				p, err := j.PlanRow(context.Background(), env)
				if err != nil {
					t.Fatal(err)
				}
				if p.Kind != c.kind || !strings.Contains(p.Reason, c.reason) {
					t.Fatalf("--on-exists %s: plan %s %q, want %s with %q", on, p.Kind, p.Reason, c.kind, c.reason)
				}
			}
			// Apply: no username_available; the create's own refusal.
			env.CheckNames, env.OnExists = false, ExistsSkip
			before := env.Client.Requests()
			_, err := j.Run(context.Background(), env, &State{})
			var re *RowError
			switch {
			case c.kind == KindCreate:
				if err != nil || !slices.Equal(srv.writes, []string{put}) {
					t.Fatalf("run: %v, writes %v", err, srv.writes)
				}
			case !errors.As(err, &re) || !re.Conflict || !strings.Contains(re.Msg, c.reason):
				t.Fatalf("run: %v, want the conflict %q", err, c.reason)
			case c.refusal != "" && (!slices.Equal(srv.writes, []string{put}) || env.Client.Requests()-before != 2):
				t.Fatalf("run sent %d requests, writes %v: want the user's read and the refused create", env.Client.Requests()-before, srv.writes)
			case c.refusal == "" && len(srv.writes) > 0:
				t.Fatalf("a deactivated account's name was written: %v", srv.writes)
			}
		})
	}
}

// TestPlanWithoutTheNameAPICreatesAsBefore: a server that does not know
// username_available (404) is not a failure: the row plans its create.
func TestPlanWithoutTheNameAPICreatesAsBefore(t *testing.T) {
	_, j, env := scripted(t, nil, "action", "create", "user_id", "a")
	env.CheckNames = true
	if p, err := j.PlanRow(context.Background(), env); err != nil || p.Kind != KindCreate {
		t.Fatalf("plan %+v, %v", p, err)
	}
}
