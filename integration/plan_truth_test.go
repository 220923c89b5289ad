package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrivateRoomRowIsAConflictAndCreatesNobody: Synapse's join API puts a
// user in a room that is not public only by an invite from the admin, so
// the admin must be in the room. A create row naming an invite-only room
// the admin is not in is a conflict in plan (naming the room and why), and
// apply fails the row before the account is created (issue 12: it created
// the account, then failed the join with 403, half done).
func TestPrivateRoomRowIsAConflictAndCreatesNobody(t *testing.T) {
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	room := e.roomOf(t, owner, "private "+p, "private_chat")
	newUser := p + "-new"
	writeFile(t, dir, "m.csv", fmt.Sprintf("user_id,action,password,rooms\n%s,create,Pw-%s-9x,%s\n", newUser, p, room))

	plan := e.synbatch(t, dir, "plan", "m.csv")
	if plan.code != 1 || !strings.Contains(plan.stdout, "conflict") ||
		!strings.Contains(plan.stdout, "room "+room+" is invite-only and") || !strings.Contains(plan.stdout, "is not in it") {
		t.Fatalf("plan: exit %d, want 1 with a conflict naming %s and why:\n%s\n%s", plan.code, room, plan.stdout, plan.stderr)
	}
	st := e.applyJSON(t, dir, 1, "m.csv")
	if st.Outcomes["failed"] != 1 || st.Writes != 0 {
		t.Errorf("apply %+v, want the row failed with no write", st)
	}
	if e.user(t, e.id(newUser)) != nil {
		t.Errorf("a row whose room the admin cannot join users to created %s", e.id(newUser))
	}
}
