package mas

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Room, notice and suspend rows work on a MAS-mode server with nothing but
// the MAS admin client configured (MAS issues the run's Synapse token): read
// back from Synapse, the user is in the room, has the notice, and is
// suspended.
func TestMASRoomNoticeSuspendRows(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	name := uniq(t)
	r.masCreateUser(t, name, nil)
	code, room := r.synapse(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "mas rows " + name, "preset": "public_chat"})
	if code != 200 {
		t.Fatalf("createRoom: HTTP %d %v", code, room)
	}
	roomID := room["room_id"].(string)
	msg := "welcome " + name
	// A manifest names a user once: the suspension is a second one.
	sheet := filepath.Join(dir, "rows.csv")
	os.WriteFile(sheet, []byte(fmt.Sprintf("user_id,action,message,room_id\n%s,join,,%s\n%s,notice,%s,\n", name, roomID, name, msg)), 0o600)
	sheet2 := filepath.Join(dir, "suspend.csv")
	os.WriteFile(sheet2, []byte("user_id,action\n"+name+",suspend\n"), 0o600)
	for _, m := range []string{sheet, sheet2} {
		res := r.synbatch(t, dir, r.env(dir, false), "apply", "--yes", m)
		if res.code != 0 {
			t.Fatalf("apply %s: exit %d\n%s\n%s", filepath.Base(m), res.code, res.stdout, res.stderr)
		}
	}
	u := r.synapseUser(t, r.id(name))
	if u == nil || u["suspended"] != true {
		t.Errorf("Synapse: not suspended: %v", u)
	}
	code, members := r.synapse(t, "GET", "/_synapse/admin/v1/rooms/"+url.PathEscape(roomID)+"/members", nil)
	if code != 200 {
		t.Fatalf("members: HTTP %d %v", code, members)
	}
	var ms []string
	for _, m := range members["members"].([]any) {
		ms = append(ms, m.(string))
	}
	if !slices.Contains(ms, r.id(name)) {
		t.Errorf("%s is not in the room: %v", r.id(name), ms)
	}
	if !r.hasNotice(t, msg) {
		t.Errorf("the notice %q is in no Server Notices room", msg)
	}
}

// hasNotice looks for a server notice with body text in the notice rooms.
func (r *rig) hasNotice(t *testing.T, text string) bool {
	t.Helper()
	code, rooms := r.synapse(t, "GET", "/_synapse/admin/v1/rooms?search_term=Server+Notices&limit=1000", nil)
	if code != 200 {
		t.Fatalf("room list: HTTP %d %v", code, rooms)
	}
	for _, x := range rooms["rooms"].([]any) {
		rid := x.(map[string]any)["room_id"].(string)
		_, msgs := r.synapse(t, "GET", "/_synapse/admin/v1/rooms/"+url.PathEscape(rid)+"/messages?dir=b&limit=50", nil)
		chunk, _ := msgs["chunk"].([]any)
		for _, ev := range chunk {
			c, _ := ev.(map[string]any)["content"].(map[string]any)
			if c["body"] == text {
				return true
			}
		}
	}
	return false
}

// export users on a MAS server writes MAS's users with their emails, links
// and admin flags joined with Synapse's profiles, and applying the export
// back plans every row unchanged.
func TestMASExportUsersRoundTrips(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, _ := firstProvider(t, r)
	pre := uniq(t)
	sheet, users := hrSheet(t, dir, pre, provName, 12)
	env := r.env(dir, false)
	if res := r.synbatch(t, dir, env, "apply", "--yes", sheet); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s", res.code, res.stderr)
	}
	out := filepath.Join(dir, "export.csv")
	res := r.synbatch(t, dir, env, "export", "users", "--user-id", pre, "--out", out)
	if res.code != 0 {
		t.Fatalf("export: exit %d\n%s", res.code, res.stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(users)+1 {
		t.Fatalf("export has %d rows, want %d", len(recs)-1, len(users))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	byID := map[string][]string{}
	for _, rec := range recs[1:] {
		byID[strings.TrimPrefix(rec[col["user_id"]], "'")] = rec
	}
	for _, u := range users {
		rec := byID[r.id(u.local)]
		if rec == nil {
			t.Errorf("%s: not exported", u.local)
			continue
		}
		emails := strings.Split(rec[col["emails"]], ";")
		want := slices.Clone(u.emails)
		slices.Sort(emails)
		slices.Sort(want)
		if !slices.Equal(emails, want) {
			t.Errorf("%s: exported emails %v, want %v", u.local, emails, want)
		}
		wantIDs := ""
		if u.subject != "" {
			wantIDs = provName + ":" + u.subject
		}
		if got := strings.TrimPrefix(rec[col["external_ids"]], "'"); got != wantIDs {
			t.Errorf("%s: exported external_ids %q, want %q", u.local, got, wantIDs)
		}
		if rec[col["admin"]] != fmt.Sprint(u.admin) || rec[col["displayname"]] != u.name {
			t.Errorf("%s: exported admin %s displayname %s", u.local, rec[col["admin"]], rec[col["displayname"]])
		}
	}
	plan := r.synbatch(t, dir, env, "plan", out)
	if plan.code != 0 || !strings.Contains(plan.stdout, fmt.Sprintf("%d rows: %d unchanged", len(users), len(users))) {
		t.Fatalf("plan of the export: exit %d, want all unchanged\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
}

// reset-password, lock, deactivate (without erase), then unlock and
// reactivate rows on a MAS server go to MAS: read back from MAS (a login
// with the new password, the lock and deactivation times) and from the
// real Synapse (locked, deactivated, not erased), then undone.
func TestMASAccountActionsReadBack(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, _ := firstProvider(t, r)
	pre := uniq(t)
	sheet, users := hrSheet(t, dir, pre, provName, 3)
	env := r.env(dir, false)
	if res := r.synbatch(t, dir, env, "apply", "--yes", sheet); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s", res.code, res.stderr)
	}
	a, b, c := users[0].local, users[1].local, users[2].local
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m1 := write("m1.csv", fmt.Sprintf("user_id,action,password,erase\n%s,reset-password,New-pass-%s-1,\n%s,lock,,\n%s,deactivate,,false\n", a, pre, b, c))
	if res := r.synbatch(t, dir, env, "apply", "--yes", m1); res.code != 0 {
		t.Fatalf("apply m1: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if !r.masPasswordWorks(t, a, "New-pass-"+pre+"-1") || r.masPasswordWorks(t, a, users[0].password) {
		t.Error("reset-password: MAS does not take the new password, or still takes the old")
	}
	if u := r.masUser(t, b); u == nil || u.Attributes["locked_at"] == nil {
		t.Errorf("lock: MAS %v", u)
	}
	if su := r.synapseUser(t, r.id(b)); su["locked"] != true {
		t.Errorf("lock: Synapse locked %v", su["locked"])
	}
	if u := r.masUser(t, c); u == nil || u.Attributes["deactivated_at"] == nil {
		t.Errorf("deactivate: MAS %v", u)
	}
	if su := r.synapseUser(t, r.id(c)); su["deactivated"] != true || su["erased"] != false {
		t.Errorf("deactivate erase=false: Synapse deactivated %v erased %v", su["deactivated"], su["erased"])
	}
	plan := r.synbatch(t, dir, env, "plan", m1)
	if !strings.Contains(plan.stdout, "1 update, 2 unchanged") && !strings.Contains(plan.stdout, "2 unchanged, 1 update") {
		// reset-password always sets (a password cannot be read back); the others are done.
		t.Errorf("plan of m1 again:\n%s", plan.stdout)
	}
	m2 := write("m2.csv", fmt.Sprintf("user_id,action,password\n%s,unlock,\n%s,reactivate,Back-again-%s-2\n", b, c, pre))
	if res := r.synbatch(t, dir, env, "apply", "--yes", m2); res.code != 0 {
		t.Fatalf("apply m2: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if u := r.masUser(t, b); u.Attributes["locked_at"] != nil {
		t.Errorf("unlock: MAS locked_at %v", u.Attributes["locked_at"])
	}
	if u := r.masUser(t, c); u.Attributes["deactivated_at"] != nil || !r.masPasswordWorks(t, c, "Back-again-"+pre+"-2") {
		t.Errorf("reactivate: MAS deactivated_at %v, or the password does not work", u.Attributes["deactivated_at"])
	}
	if su := r.synapseUser(t, r.id(c)); su["deactivated"] != false {
		t.Errorf("reactivate: Synapse deactivated %v", su["deactivated"])
	}
}
