package synapse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// echo answers every request with body and remembers the last one.
type echo struct {
	mu     sync.Mutex
	body   string
	status int
	last   string // METHOD path?query
	sent   string // the request's body
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	e.last, e.sent = r.Method+" "+r.URL.RequestURI(), string(b)
	if e.status != 0 {
		w.WriteHeader(e.status)
	}
	w.Write([]byte(e.body))
}

// TestEveryEndpoint calls each client method once: the request it sends,
// and what it makes of a typical answer.
func TestEveryEndpoint(t *testing.T) {
	e := &echo{}
	hs := httptest.NewServer(e)
	defer hs.Close()
	c, err := New(Config{Server: hs.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, answer, want string // want: the request, as METHOD path?query
		call               func() (any, error)
		check              string // a substring of the result printed with %v
	}{
		{"whoami", `{"user_id":"@admin:hs"}`, "GET /_matrix/client/v3/account/whoami",
			func() (any, error) { return c.Whoami(ctx) }, "@admin:hs"},
		{"is admin", `{"admin":true}`, "GET /_synapse/admin/v1/users/@a:hs/admin",
			func() (any, error) { return c.IsAdmin(ctx, "@a:hs") }, "true"},
		{"server version", `{"server_version":"1.160.0"}`, "GET /_synapse/admin/v1/server_version",
			func() (any, error) { return c.ServerVersion(ctx) }, "1.160.0"},
		{"get user", `{"name":"@a:hs","displayname":"A","deactivated":1}`, "GET /_synapse/admin/v2/users/@a:hs",
			func() (any, error) {
				u, err := c.GetUser(ctx, "@a:hs")
				return *u.Displayname + " " + map[bool]string{true: "deactivated"}[bool(u.Deactivated)], err
			}, "A deactivated"},
		{"put user", `{}`, "PUT /_synapse/admin/v2/users/@a:hs",
			func() (any, error) { return c.PutUser(ctx, "@a:hs", map[string]any{"displayname": "A"}) }, "false"},
		{"threepid owner", `{"user_id":"@b:hs"}`, "GET /_synapse/admin/v1/threepid/email/users/b@x.org",
			func() (any, error) { return c.ThreepidOwner(ctx, "email", "b@x.org") }, "@b:hs"},
		{"external id owner", `{"user_id":"@b:hs"}`, "GET /_synapse/admin/v1/auth_providers/oidc/users/1",
			func() (any, error) { return c.ExternalIDOwner(ctx, "oidc", "1") }, "@b:hs"},
		{"reset password", `{}`, "POST /_synapse/admin/v1/reset_password/@a:hs",
			func() (any, error) { return nil, c.ResetPassword(ctx, "@a:hs", "pw", false) }, ""},
		{"devices", `{"devices":[{"device_id":"D1"}]}`, "GET /_synapse/admin/v2/users/@a:hs/devices",
			func() (any, error) { return c.Devices(ctx, "@a:hs") }, "D1"},
		{"delete devices", `{}`, "POST /_synapse/admin/v2/users/@a:hs/delete_devices",
			func() (any, error) { return nil, c.DeleteDevices(ctx, "@a:hs", []string{"D1"}) }, ""},
		{"deactivate", `{}`, "POST /_synapse/admin/v1/deactivate/@a:hs",
			func() (any, error) { return nil, c.Deactivate(ctx, "@a:hs", true) }, ""},
		{"joined rooms", `{"joined_rooms":["!r:hs"]}`, "GET /_synapse/admin/v1/users/@a:hs/joined_rooms",
			func() (any, error) { return c.JoinedRooms(ctx, "@a:hs") }, "!r:hs"},
		{"join", `{}`, "POST /_synapse/admin/v1/join/%21r:hs",
			func() (any, error) { return nil, c.Join(ctx, "!r:hs", "@a:hs") }, ""},
		{"resolve alias", `{"room_id":"!r:hs"}`, "GET /_matrix/client/v3/directory/room/%23lobby:hs",
			func() (any, error) { return c.ResolveAlias(ctx, "#lobby:hs") }, "!r:hs"},
		{"shadow ban", `{}`, "POST /_synapse/admin/v1/users/@a:hs/shadow_ban",
			func() (any, error) { return nil, c.SetShadowBan(ctx, "@a:hs", true) }, ""},
		{"unshadow ban", `{}`, "DELETE /_synapse/admin/v1/users/@a:hs/shadow_ban",
			func() (any, error) { return nil, c.SetShadowBan(ctx, "@a:hs", false) }, ""},
		{"get ratelimit", `{"messages_per_second":3}`, "GET /_synapse/admin/v1/users/@a:hs/override_ratelimit",
			func() (any, error) { r, err := c.GetRatelimit(ctx, "@a:hs"); return *r.MessagesPerSecond, err }, "3"},
		{"set ratelimit", `{}`, "POST /_synapse/admin/v1/users/@a:hs/override_ratelimit",
			func() (any, error) { return nil, c.SetRatelimit(ctx, "@a:hs", 1, 2) }, ""},
		{"delete ratelimit", `{}`, "DELETE /_synapse/admin/v1/users/@a:hs/override_ratelimit",
			func() (any, error) { return nil, c.DeleteRatelimit(ctx, "@a:hs") }, ""},
		{"room exists", `{}`, "GET /_synapse/admin/v1/rooms/%21r:hs",
			func() (any, error) { return nil, c.RoomExists(ctx, "!r:hs") }, ""},
		{"get room", `{"room_id":"!r:hs","joined_members":4}`, "GET /_synapse/admin/v1/rooms/%21r:hs",
			func() (any, error) { r, err := c.GetRoom(ctx, "!r:hs"); return r.JoinedMembers, err }, "4"},
		{"list rooms", `{"rooms":[{"room_id":"!r:hs"}],"next_batch":100,"total_rooms":300}`, "GET /_synapse/admin/v1/rooms?",
			func() (any, error) {
				rs, next, total, err := c.ListRooms(ctx, RoomFilter{Search: "lob"}, "", 100)
				return []any{len(rs), next, total}, err
			}, "[1 100 300]"},
		{"room block", `{"block":true,"user_id":"@mod:hs"}`, "GET /_synapse/admin/v1/rooms/%21r:hs/block",
			func() (any, error) { b, by, err := c.RoomBlock(ctx, "!r:hs"); return []any{b, by}, err }, "[true @mod:hs]"},
		{"set room block", `{}`, "PUT /_synapse/admin/v1/rooms/%21r:hs/block",
			func() (any, error) { return nil, c.SetRoomBlock(ctx, "!r:hs", true) }, ""},
		{"room members", `{"members":["@a:hs"]}`, "GET /_synapse/admin/v1/rooms/%21r:hs/members",
			func() (any, error) { return c.RoomMembers(ctx, "!r:hs") }, "@a:hs"},
		{"room state", `{"state":[{"type":"m.room.create","sender":"@a:hs"}]}`, "GET /_synapse/admin/v1/rooms/%21r:hs/state?type=m.room.create",
			func() (any, error) { s, err := c.RoomState(ctx, "!r:hs", "m.room.create"); return s[0].Sender, err }, "@a:hs"},
		{"first events", `{"chunk":[{"event_id":"$e","origin_server_ts":5}]}`, "GET /_synapse/admin/v1/rooms/%21r:hs/messages?",
			func() (any, error) { ev, err := c.FirstEvents(ctx, "!r:hs", 2); return ev[0].OriginServerTS, err }, "5"},
		{"make room admin", `{}`, "POST /_synapse/admin/v1/rooms/%21r:hs/make_room_admin",
			func() (any, error) { return nil, c.MakeRoomAdmin(ctx, "!r:hs", "@a:hs") }, ""},
		{"delete room", `{"delete_id":"d1"}`, "DELETE /_synapse/admin/v2/rooms/%21r:hs",
			func() (any, error) { return c.DeleteRoom(ctx, "!r:hs", DeleteRoomOptions{}) }, "d1"},
		{"delete status", `{"delete_id":"d1","status":"active"}`, "GET /_synapse/admin/v2/rooms/delete_status/d1",
			func() (any, error) { t, err := c.DeleteStatus(ctx, "d1"); return TaskRunning(t.Status), err }, "true"},
		{"room delete tasks", `{"results":[{"delete_id":"d1","status":"complete"}]}`, "GET /_synapse/admin/v2/rooms/%21r:hs/delete_status",
			func() (any, error) { ts, err := c.RoomDeleteTasks(ctx, "!r:hs"); return ts[0].Status, err }, "complete"},
		{"purge history", `{"purge_id":"p1"}`, "POST /_synapse/admin/v1/purge_history/%21r:hs",
			func() (any, error) { return c.PurgeHistory(ctx, "!r:hs", 5, true) }, "p1"},
		{"purge status", `{"status":"failed","error":"boom"}`, "GET /_synapse/admin/v1/purge_history_status/p1",
			func() (any, error) { s, e, err := c.PurgeStatus(ctx, "p1"); return s + " " + e, err }, "failed boom"},
		{"quarantine media", `{"num_quarantined":2}`, "POST /_synapse/admin/v1/user/@a:hs/media/quarantine",
			func() (any, error) { return c.QuarantineUserMedia(ctx, "@a:hs") }, "2"},
		{"delete media page", `{"total":3}`, "DELETE /_synapse/admin/v1/users/@a:hs/media",
			func() (any, error) { return c.DeleteUserMediaPage(ctx, "@a:hs") }, "3"},
		{"delete media", `{}`, "DELETE /_synapse/admin/v1/media/hs/m1",
			func() (any, error) { return nil, c.DeleteMedia(ctx, "hs", "m1") }, ""},
		{"user media", `{"media":[{"media_id":"m1","safe_from_quarantine":true}],"next_token":"7","total":9}`, "GET /_synapse/admin/v1/users/@a:hs/media?",
			func() (any, error) {
				p, err := c.UserMedia(ctx, "@a:hs", "", 50)
				return p.NextToken + " " + p.Media[0].MediaID, err
			}, "7 m1"},
		{"user details", `{"name":"@a:hs"}`, "GET /_synapse/admin/v2/users/@a:hs",
			func() (any, error) { b, err := c.UserDetails(ctx, "@a:hs"); return string(b), err }, `"name"`},
		{"device list", `{"devices":[]}`, "GET /_synapse/admin/v2/users/@a:hs/devices",
			func() (any, error) { b, err := c.DeviceList(ctx, "@a:hs"); return string(b), err }, "devices"},
		{"whois", `{"user_id":"@a:hs"}`, "GET /_synapse/admin/v1/whois/@a:hs",
			func() (any, error) { b, err := c.Whois(ctx, "@a:hs"); return string(b), err }, "user_id"},
		{"pushers", `{"pushers":[]}`, "GET /_synapse/admin/v1/users/@a:hs/pushers",
			func() (any, error) { b, err := c.Pushers(ctx, "@a:hs"); return string(b), err }, "pushers"},
		{"account data", `{"account_data":{"global":{"m.x":{}}}}`, "GET /_synapse/admin/v1/users/@a:hs/accountdata",
			func() (any, error) { ad, err := c.AccountData(ctx, "@a:hs"); return len(ad.Global), err }, "1"},
		{"room details", `{"room_id":"!r:hs","name":"Lobby"}`, "GET /_synapse/admin/v1/rooms/%21r:hs",
			func() (any, error) { _, err := c.Room(ctx, "!r:hs"); return nil, err }, ""},
		{"suspend", `{}`, "PUT /_synapse/admin/v1/suspend/@a:hs",
			func() (any, error) { return nil, c.SetSuspended(ctx, "@a:hs", true) }, ""},
		{"suspended", `{"name":"@a:hs","suspended":true}`, "GET /_synapse/admin/v2/users/@a:hs",
			func() (any, error) { u, err := c.GetUser(ctx, "@a:hs"); return bool(u.Suspended), err }, "true"},
		{"username available", `{"available":true}`, "GET /_synapse/admin/v1/username_available?username=a%2Bb",
			func() (any, error) {
				ok, why, err := c.UsernameAvailable(ctx, "a+b")
				return []any{ok, why == nil}, err
			}, "[true true]"},
		{"sso providers", `{"flows":[{"type":"m.login.password"},{"type":"m.login.sso","identity_providers":[{"id":"oidc-keycloak","name":"K"},{"id":"cas"}]}]}`,
			"GET /_matrix/client/v3/login", func() (any, error) { return c.SSOProviders(ctx) }, "[oidc-keycloak cas]"},
		{"list users", `{"users":[{"name":"@a:hs"}],"next_token":"2"}`, "GET /_synapse/admin/v2/users?",
			func() (any, error) {
				us, next, err := c.ListUsers(ctx, ListFilter{Name: "a", AdminsOnly: true, UserTypes: []string{"bot"}}, "", 10)
				return []any{len(us), next}, err
			}, "[1 2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.mu.Lock()
			e.body, e.status = tc.answer, 0
			e.mu.Unlock()
			got, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			e.mu.Lock()
			last := e.last
			e.mu.Unlock()
			if !strings.HasPrefix(last, tc.want) {
				t.Fatalf("sent %q, want %q", last, tc.want)
			}
			if s := strings.TrimSpace(strings.Join(strings.Fields(strings.ReplaceAll(fmtAny(got), "\n", " ")), " ")); !strings.Contains(s, tc.check) {
				t.Fatalf("result %s, want %q in it", s, tc.check)
			}
		})
	}
	if c.Requests() == 0 || c.Writes() == 0 {
		t.Fatalf("requests %d, writes %d", c.Requests(), c.Writes())
	}
}

// TestSuspendBodyAndUsernameRefusals: suspend sends {"suspend": bool}; a
// username the server refuses (400) is an answer with its reason, not an
// error; other failures stay errors; a server without SSO lists no provider.
func TestSuspendBodyAndUsernameRefusals(t *testing.T) {
	e := &echo{body: `{}`}
	hs := httptest.NewServer(e)
	defer hs.Close()
	c, _ := New(Config{Server: hs.URL, Token: "t"})
	ctx := context.Background()
	for _, want := range []bool{true, false} {
		if err := c.SetSuspended(ctx, "@a:hs", want); err != nil || e.sent != fmt.Sprintf(`{"suspend":%t}`, want) {
			t.Fatalf("suspend %t: sent %q, %v", want, e.sent, err)
		}
	}
	e.status, e.body = 400, `{"errcode":"M_EXCLUSIVE","error":"This user ID is reserved by an application service."}`
	ok, why, err := c.UsernameAvailable(ctx, "bridge_a")
	if ok || err != nil || why == nil || why.Errcode != "M_EXCLUSIVE" {
		t.Fatalf("refused name: %v %+v %v", ok, why, err)
	}
	e.status, e.body = 500, `{}`
	if ok, why, err := c.UsernameAvailable(ctx, "a"); ok || why != nil || err == nil {
		t.Fatalf("a 500 is an answer: %v %+v %v", ok, why, err)
	}
	e.status, e.body = 0, `{"flows":[{"type":"m.login.password"}]}`
	if ids, err := c.SSOProviders(ctx); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("no SSO flow: %v %v", ids, err)
	}
}

func TestDownloadAndProbe(t *testing.T) {
	e := &echo{body: "file bytes"}
	hs := httptest.NewServer(e)
	defer hs.Close()
	c, _ := New(Config{Server: hs.URL, Token: "t"})
	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "hs", "m1", &buf)
	if err != nil || n != 10 || buf.String() != "file bytes" || e.last != "GET /_matrix/client/v1/media/download/hs/m1" {
		t.Fatalf("download %d %v %q %q", n, err, buf.String(), e.last)
	}
	if err := c.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.status = 502
	if err := c.Probe(context.Background()); err == nil {
		t.Fatal("a 502 probe passed")
	}
	if _, err := c.Download(context.Background(), "hs", "m1", &buf); err == nil {
		t.Fatal("a 502 download passed")
	}
}

func fmtAny(v any) string { return strings.TrimSpace(fmt.Sprint(v)) }
