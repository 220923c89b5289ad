package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestApplySummaryCountsCreatedUpdatedUnchanged: against the real Synapse, a
// run that creates one user, renames another and leaves a third alone says
// 1 created, 1 updated, 1 unchanged, in its text and JSON summaries and in
// journal summary; the server, read back, holds what those words claim.
func TestApplySummaryCountsCreatedUpdatedUnchanged(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	seed := writeFile(t, dir, "seed.csv", fmt.Sprintf("user_id,displayname,password\n%s.a,A,pw-%s-aaaa-1\n%s.b,B,pw-%s-bbbb-1\n", p, p, p, p))
	if r := e.synbatch(t, dir, "apply", "--yes", seed); r.code != 0 || !strings.Contains(r.stdout, "2 rows: 2 created\n") {
		t.Fatalf("seed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if e.user(t, e.id(p+".c")) != nil {
		t.Fatalf("%s exists before the run that creates it", e.id(p+".c"))
	}
	month := writeFile(t, dir, "month.csv", fmt.Sprintf("user_id,displayname\n%s.a,A\n%s.b,B renamed\n%s.c,C\n", p, p, p))
	r := e.synbatch(t, dir, "apply", "--yes", "--output", "json", month)
	var s struct {
		Outcomes         map[string]int `json:"outcomes"`
		Created, Updated int
		Journal          string `json:"journal"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
		t.Fatalf("apply: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if s.Created != 1 || s.Updated != 1 || s.Outcomes["unchanged"] != 1 || s.Outcomes["done"] != 2 {
		t.Fatalf("summary %+v; want 1 created, 1 updated, 1 unchanged, outcomes.done 2", s)
	}
	if u := e.user(t, e.id(p+".c")); u == nil || u.Displayname == nil || *u.Displayname != "C" {
		t.Fatalf("%s: %+v; want created with display name C", e.id(p+".c"), u)
	}
	if u := e.user(t, e.id(p+".b")); u == nil || u.Displayname == nil || *u.Displayname != "B renamed" {
		t.Fatalf("%s: %+v; want renamed", e.id(p+".b"), u)
	}
	if u := e.user(t, e.id(p+".a")); u == nil || u.Displayname == nil || *u.Displayname != "A" {
		t.Fatalf("%s: %+v; want left as it was", e.id(p+".a"), u)
	}
	js := e.synbatch(t, dir, "journal", "summary", s.Journal)
	if js.code != 0 || !strings.Contains(js.stdout, "3 rows: 1 created 1 updated 1 unchanged\n") {
		t.Fatalf("journal summary: exit %d\n%s%s", js.code, js.stdout, js.stderr)
	}
}
