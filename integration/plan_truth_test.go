package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPrivateRoomRowIsAConflictAndCreatesNobody: Synapse's join API puts a
// user in a room that is not public only by an invite from the admin, so
// the admin must be in the room, with the power to invite. A create row
// naming an invite-only room the admin is not in, or one where the admin
// may not invite, is a conflict in plan (naming the room and why), and
// apply fails the row before the account is created (issue 12: it created
// the account, then failed the join with 403, half done).
func TestPrivateRoomRowIsAConflictAndCreatesNobody(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	room := e.roomOf(t, owner, "private "+p, "private_chat")
	// A second private room the admin is in, where inviting takes more
	// power than the admin has.
	var out struct {
		RoomID string `json:"room_id"`
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/createRoom", owner.token, map[string]any{"name": "strict " + p,
		"preset": "private_chat", "power_level_content_override": map[string]any{"invite": 100}}, &out)
	strict := out.RoomID
	admin, err := e.client.Whoami(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(strict)+"/invite", owner.token, map[string]any{"user_id": admin}, nil)
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(strict), e.adminToken(t), map[string]any{}, nil)

	users := []string{p + "-new", p + "-new2"}
	writeFile(t, dir, "m.csv", fmt.Sprintf("user_id,action,password,rooms\n%s,create,Pw-%s-9x,%s\n%s,create,Pw-%s-9x,%s\n",
		users[0], p, room, users[1], p, strict))

	plan := e.synbatch(t, dir, "plan", "m.csv")
	for _, want := range []string{
		"row 2 " + e.id(users[0]) + " create: conflict: room " + room + " is invite-only and " + admin + " is not in it",
		"row 3 " + e.id(users[1]) + " create: conflict: room " + strict + " is not public and " + admin + " has power level 0 there, below the 100 it takes to invite",
	} {
		if plan.code != 1 || !strings.Contains(plan.stdout, want) {
			t.Errorf("plan: exit %d, want 1 with %q:\n%s\n%s", plan.code, want, plan.stdout, plan.stderr)
		}
	}
	st := e.applyJSON(t, dir, 1, "m.csv")
	if st.Outcomes["failed"] != 2 || st.Writes != 0 {
		t.Errorf("apply %+v, want both rows failed with no write", st)
	}
	for _, u := range users {
		if e.user(t, e.id(u)) != nil {
			t.Errorf("a row whose room the admin cannot join users to created %s", e.id(u))
		}
	}
}
