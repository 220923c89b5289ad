package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestCreateRowOnADeactivatedNameIsAConflict: a create row whose localpart
// a deactivated account holds is a conflict in plan (exit 1) and apply
// creates nothing and changes nothing: the server still has the
// deactivated account as it was. A fresh name on the same sheet is created.
func TestCreateRowOnADeactivatedNameIsAConflict(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	gone, fresh := p+"-gone", p+"-new"
	id := e.newUser(t, gone, map[string]any{"displayname": "Departed"})
	if err := e.client.Deactivate(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "m.csv", fmt.Sprintf("user_id,action,displayname,password\n%s,create,Newcomer,pw-%s-1\n%s,create,Fresh,pw-%s-1\n", gone, gone, fresh, fresh))

	for _, onExists := range []string{"skip", "update", "fail"} {
		r := e.synbatch(t, dir, "plan", "m.csv", "--on-exists", onExists)
		if r.code != 1 || !strings.Contains(r.stdout, "row 2 "+id+" create: conflict: "+id+" is taken by a deactivated account") ||
			!strings.Contains(r.stdout, "row 3 "+e.id(fresh)+" create: create") {
			t.Fatalf("plan --on-exists %s: exit %d\n%s%s", onExists, r.code, r.stdout, r.stderr)
		}
	}
	st := e.applyJSON(t, dir, 1, "m.csv")
	if st.Outcomes["failed"] != 1 || st.Outcomes["done"] != 1 {
		t.Fatalf("apply: %+v", st)
	}
	u := e.mustUser(t, id)
	if !bool(u.Deactivated) || u.Displayname == nil || *u.Displayname != "Departed" {
		t.Errorf("the deactivated account changed: deactivated %v, displayname %v", u.Deactivated, u.Displayname)
	}
	if e.login(t, gone, "pw-"+gone+"-1") {
		t.Errorf("the row's password logs in to %s", id)
	}
	if e.user(t, e.id(fresh)) == nil {
		t.Errorf("%s was not created", e.id(fresh))
	}
	if r := journalRows(t, dir+"/m.csv.journal.jsonl")[2]; r.Outcome != "failed" || !strings.Contains(r.Error, "deactivated account") {
		t.Errorf("journal row 2: %+v", r)
	}
}

// TestCreateRowInAnAppserviceNamespaceIsAConflict: the test server has an
// application service whose exclusive namespace is @synbatch-as-*. A create
// row for such a name is a conflict in plan (username_available says so),
// and apply, which leaves the check to the create, fails the row with the
// same reason: Synapse refuses the create, and the server has no account.
func TestCreateRowInAnAppserviceNamespaceIsAConflict(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	local := "synbatch-as-" + uniq(t)
	id := e.id(local)
	writeFile(t, dir, "m.csv", fmt.Sprintf("user_id,action,displayname\n%s,create,Bridged\n", local))

	r := e.synbatch(t, dir, "plan", "m.csv")
	if r.code != 1 || !strings.Contains(r.stdout, "row 2 "+id+" create: conflict: the name "+local+" is reserved by an application service") {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st := e.applyJSON(t, dir, 1, "m.csv")
	if st.Outcomes["failed"] != 1 {
		t.Fatalf("apply: %+v", st)
	}
	if jr := journalRows(t, dir+"/m.csv.journal.jsonl")[2]; !strings.Contains(jr.Error, "reserved by an application service") {
		t.Errorf("journal row 2: %+v", jr)
	}
	if u := e.user(t, id); u != nil {
		t.Errorf("%s was created in the application service's namespace: %+v", id, u)
	}
}
