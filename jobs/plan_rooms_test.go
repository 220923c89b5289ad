package jobs

import (
	"context"
	"strings"
	"testing"
)

// TestRoomsAJoinCannotReach: a row that joins its user to a room the
// admin's join API cannot reach (not public, the admin not in it) is a
// conflict in plan, and apply writes nothing, so no account is created.
func TestRoomsAJoinCannotReach(t *testing.T) {
	const (
		roomP    = "GET /_synapse/admin/v1/rooms/!p:hs"
		membersP = "GET /_synapse/admin/v1/rooms/!p:hs/members"
		whoami   = "GET /_matrix/client/v3/account/whoami"
	)
	for _, c := range []struct {
		name   string
		row    []string
		answer map[string]string
		kind   Kind
		reason string
		writes int
	}{
		{"create, invite-only, admin out", []string{"action", "create", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs"]}`}, KindConflict, "!p:hs is invite-only and @admin:hs is not in it", 0},
		{"create by alias, knock, admin out", []string{"action", "create", "user_id", "a", "rooms", "#p:hs"},
			map[string]string{"GET /_matrix/client/v3/directory/room/#p:hs": `{"room_id":"!p:hs"}`,
				roomP: `{"room_id":"!p:hs","join_rules":"knock"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs"]}`}, KindConflict, "#p:hs has join rule knock and @admin:hs is not in it", 0},
		{"update, invite-only, admin out", []string{"action", "upsert", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/joined_rooms": `{"joined_rooms":[]}`,
				roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs"]}`}, KindConflict, "@admin:hs is not in it", 0},
		{"join-rooms, invite-only, admin out", []string{"action", "join-rooms", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{userA: activeA, "GET /_synapse/admin/v1/users/@a:hs/joined_rooms": `{"joined_rooms":[]}`,
				roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs"]}`}, KindConflict, "@admin:hs is not in it", 0},
		{"join, invite-only, admin out", []string{"action", "join", "room_id", "!p:hs", "user_id", "a"},
			map[string]string{userA: activeA, roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs"]}`}, KindConflict, "@admin:hs is not in it", 0},
		{"create, invite-only, admin in", []string{"action", "create", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs","@admin:hs"]}`}, KindCreate, "join !p:hs", 2},
		{"create, invite-only, admin in without power to invite", []string{"action", "create", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs","@admin:hs"]}`,
				"GET /_synapse/admin/v1/rooms/!p:hs/state?type=m.room.power_levels": `{"state":[{"content":{"invite":50,"users":{"@owner:hs":100}}}]}`,
				"GET /_synapse/admin/v1/rooms/!p:hs/state?type=m.room.create":       `{"state":[{"sender":"@owner:hs","content":{"room_version":"10"}}]}`},
			KindConflict, "@admin:hs has power level 0 there, below the 50 it takes to invite", 0},
		{"create, invite-only, admin in with power", []string{"action", "create", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{roomP: `{"room_id":"!p:hs","join_rules":"invite"}`, whoami: `{"user_id":"@admin:hs"}`,
				membersP: `{"members":["@owner:hs","@admin:hs"]}`,
				"GET /_synapse/admin/v1/rooms/!p:hs/state?type=m.room.power_levels": `{"state":[{"content":{"invite":50,"users":{"@admin:hs":"50"}}}]}`},
			KindCreate, "join !p:hs", 2},
		{"create, public", []string{"action", "create", "user_id", "a", "rooms", "!p:hs"},
			map[string]string{roomP: `{"room_id":"!p:hs","join_rules":"public"}`}, KindCreate, "join !p:hs", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, j, env := scripted(t, c.answer, c.row...)
			p, err := j.PlanRow(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			text := p.Reason
			for _, ch := range p.Changes {
				text += "; " + ch.String()
			}
			if p.Kind != c.kind || !strings.Contains(text, c.reason) {
				t.Fatalf("plan %s %q, want %s with %q", p.Kind, text, c.kind, c.reason)
			}
			_, err = j.Run(context.Background(), env, &State{})
			if (err != nil) != (c.writes == 0) {
				t.Fatalf("run: %v", err)
			}
			if len(srv.writes) != c.writes {
				t.Fatalf("writes %v, want %d", srv.writes, c.writes)
			}
		})
	}
}

// TestRoomCheckedOncePerRun: rows joining the same private room check it
// once, not once a row (a sheet of 10,000 new users joining one room).
func TestRoomCheckedOncePerRun(t *testing.T) {
	_, j, env := scripted(t, map[string]string{
		"GET /_synapse/admin/v1/rooms/!p:hs":         `{"room_id":"!p:hs","join_rules":"invite"}`,
		"GET /_matrix/client/v3/account/whoami":      `{"user_id":"@admin:hs"}`,
		"GET /_synapse/admin/v1/rooms/!p:hs/members": `{"members":["@admin:hs"]}`,
	}, "action", "create", "user_id", "a", "rooms", "!p:hs")
	if _, err := j.Plan(context.Background(), env, &State{}); err != nil {
		t.Fatal(err)
	}
	before := env.Client.Requests()
	if _, err := j.Plan(context.Background(), env, &State{}); err != nil {
		t.Fatal(err)
	}
	if n := env.Client.Requests() - before; n != 1 {
		t.Fatalf("the second row sent %d requests, want 1 (its user; the room is checked)", n)
	}
}
