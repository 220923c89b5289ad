package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Issue 24's acceptance: one HR roster kept in sync month after month
// (LibreOffice-saved .ods, then CSV, then LibreOffice-saved .xlsx), a
// Status column choosing each row's action and --sync closing who left
// without a row. Every account is read back from the server after each
// month. SYNBATCH_ROSTER_STAFF shrinks the roster while developing.

// rosterPerson is one line of the HR sheet.
type rosterPerson struct {
	local, name, email, dept, status string
}

func rosterStaff() int {
	if n, err := strconv.Atoi(os.Getenv("SYNBATCH_ROSTER_STAFF")); err == nil && n >= 40 {
		return n
	}
	return 400
}

// rosterRows is the sheet as HR keeps it: their headers, a Department
// column synbatch has no use for, and a Status column.
func rosterRows(people []rosterPerson) [][]string {
	rows := [][]string{{"Username", "Full Name", "E-mail", "Department", "Status"}}
	for _, p := range people {
		rows = append(rows, []string{p.local, p.name, p.email, p.dept, p.status})
	}
	return rows
}

func writeRosterCSV(t *testing.T, path string, people []rosterPerson) {
	t.Helper()
	var b strings.Builder
	for _, r := range rosterRows(people) {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rosterArgs are the flags an admin gives for this sheet, once.
func rosterArgs(prefix string) []string {
	return []string{"--map", "Username=user_id", "--map", "Full Name=displayname", "--map", "Status=action", "--ignore", "Department",
		"--action-value", "Active=upsert", "--action-value", "Left=deactivate",
		"--sync", "deactivate", "--sync-scope", "@" + prefix + `\..*:` + "synbatch\\.test"}
}

// checkRoster reads every account of the roster back: the active ones
// with the sheet's name and address, the closed ones deactivated.
func (e *env) checkRoster(t *testing.T, people []rosterPerson, closed []string) {
	t.Helper()
	for _, p := range people {
		u := e.user(t, e.id(p.local))
		if u == nil {
			t.Fatalf("%s does not exist", e.id(p.local))
		}
		want := p.status != "Left" && !slices.Contains(closed, p.local)
		if bool(u.Deactivated) == want {
			t.Errorf("%s: deactivated %v, want %v", u.Name, u.Deactivated, !want)
			continue
		}
		if !want {
			continue
		}
		dn := ""
		if u.Displayname != nil {
			dn = *u.Displayname
		}
		var emails []string
		for _, tp := range u.Threepids {
			emails = append(emails, tp.Address)
		}
		if dn != p.name || !slices.Equal(emails, []string{strings.ToLower(p.email)}) {
			t.Errorf("%s: displayname %q emails %v; want %q [%s]", u.Name, dn, emails, p.name, strings.ToLower(p.email))
		}
	}
	for _, local := range closed {
		if u := e.user(t, e.id(local)); u == nil || !bool(u.Deactivated) {
			t.Errorf("%s: not deactivated", e.id(local))
		}
	}
}

func TestRosterThreeMonthsInSync(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	prefix := uniq(t)
	n := rosterStaff()
	var people []rosterPerson
	for i := range n {
		people = append(people, rosterPerson{local: fmt.Sprintf("%s.p%03d", prefix, i), name: fmt.Sprintf("Person %d", i),
			email: fmt.Sprintf("P%d.%s@Example.org", i, prefix), dept: []string{"Sales", "IT", "HR"}[i%3], status: "Active"})
	}
	args := rosterArgs(prefix)

	// Month 1: everyone is onboarded from the sheet as LibreOffice saves
	// it, in its own format (.ods).
	lo := soffice(t)
	writeRosterCSV(t, filepath.Join(dir, "roster-1.csv"), people)
	m1 := saveWithLibreOffice(t, lo, filepath.Join(dir, "roster-1.csv"), "ods")
	s := e.applyJSON(t, dir, 0, append([]string{"--yes", m1}, args...)...)
	if s.Rows != n || s.Outcomes["done"] != n {
		t.Fatalf("month 1: %+v; want %d rows done", s, n)
	}
	e.checkRoster(t, people, nil)

	// Month 2: one renamed, ten hired, five marked Left, three rows
	// dropped without a word. Saved as CSV this time.
	people[0].name = "Person Zero renamed"
	for i := range 10 {
		people = append(people, rosterPerson{local: fmt.Sprintf("%s.h%02d", prefix, i), name: fmt.Sprintf("Hire %d", i),
			email: fmt.Sprintf("h%d.%s@example.org", i, prefix), dept: "IT", status: "Active"})
	}
	for _, i := range []int{5, 6, 7, 8, 9} {
		people[i].status = "Left"
	}
	dropped := []string{people[20].local, people[21].local, people[22].local}
	month2 := slices.Delete(slices.Clone(people), 20, 23)
	m2 := filepath.Join(dir, "roster-2.csv")
	writeRosterCSV(t, m2, month2)
	plan := e.synbatch(t, dir, append([]string{"plan", m2}, args...)...)
	if plan.code != 0 {
		t.Fatalf("month 2 plan: exit %d\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
	for _, local := range dropped {
		if !strings.Contains(plan.stdout, "sync "+e.id(local)+" deactivate: update") {
			t.Errorf("month 2 plan does not list %s:\n%s", local, plan.stdout)
		}
	}
	if got := strings.Count(plan.stdout, "\nsync "); got != 3 {
		t.Errorf("month 2 plan lists %d sync accounts, want 3", got)
	}
	// Without --yes and without a terminal, apply names the count it
	// would close and sends nothing.
	ask := e.synbatch(t, dir, append([]string{"apply", "--journal", filepath.Join(dir, "asked.jsonl"), m2}, args...)...)
	if ask.code != 2 || !strings.Contains(ask.stderr, "would deactivate 3 accounts (--sync deactivate: not in the roster") {
		t.Fatalf("apply without --yes: exit %d\n%s", ask.code, ask.stderr)
	}
	s = e.applyJSON(t, dir, 0, append([]string{"--yes", m2}, args...)...)
	// 1 renamed + 10 hired + 5 deactivated + 3 synced; the rest unchanged.
	if s.Rows != len(month2)+3 || s.Outcomes["done"] != 19 || s.Outcomes["unchanged"] != len(month2)-16 {
		t.Fatalf("month 2: %+v; want %d rows, 19 done", s, len(month2)+3)
	}
	e.checkRoster(t, month2, dropped)
	journal, err := os.ReadFile(s.Journal)
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range dropped {
		if !strings.Contains(string(journal), `"user_id":"`+e.id(local)+`","action":"deactivate","outcome":"done"`) {
			t.Errorf("the journal has no sync record for %s", local)
		}
	}
	if strings.Count(string(journal), "not in the roster") < 3 {
		t.Errorf("the journal does not say why the accounts were chosen:\n%s", journal)
	}

	// Month 3: the same sheet again (saved by LibreOffice as .xlsx)
	// writes nothing: Left rows of deactivated accounts are unchanged,
	// nobody is left to sync.
	writeRosterCSV(t, filepath.Join(dir, "roster-3.csv"), month2)
	m3 := saveWithLibreOffice(t, lo, filepath.Join(dir, "roster-3.csv"), "xlsx")
	s = e.applyJSON(t, dir, 0, append([]string{"--yes", m3}, args...)...)
	if s.Writes != 0 || s.Rows != len(month2) || s.Outcomes["unchanged"] != len(month2) {
		t.Fatalf("month 3: %+v; want %d rows unchanged and no write", s, len(month2))
	}
	e.checkRoster(t, month2, dropped)
}

// TestRosterMissingHalfIsRefusedBySyncMax: a roster that lost half its
// rows (a filter left on in the sheet) would close half the staff: apply
// refuses above --sync-max, exit 2, and writes nothing (read back).
func TestRosterMissingHalfIsRefusedBySyncMax(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	prefix := uniq(t)
	var people []rosterPerson
	for i := range 40 {
		people = append(people, rosterPerson{local: fmt.Sprintf("%s.p%03d", prefix, i), name: fmt.Sprintf("Person %d", i),
			email: fmt.Sprintf("p%d.%s@example.org", i, prefix), dept: "Sales", status: "Active"})
	}
	args := rosterArgs(prefix)
	full := filepath.Join(dir, "full.csv")
	writeRosterCSV(t, full, people)
	if s := e.applyJSON(t, dir, 0, append([]string{"--yes", full}, args...)...); s.Outcomes["done"] != 40 {
		t.Fatalf("first import: %+v", s)
	}
	half := filepath.Join(dir, "half.csv")
	writeRosterCSV(t, half, people[:20])
	plan := e.synbatch(t, dir, append([]string{"plan", half}, args...)...)
	if plan.code != 2 || strings.Count(plan.stdout, "\nsync ") != 20 || !strings.Contains(plan.stderr, "more than --sync-max 10") {
		t.Fatalf("plan of half the roster: exit %d, want 2 listing the 20 it would close\nstdout:\n%s\nstderr:\n%s", plan.code, plan.stdout, plan.stderr)
	}
	r := e.synbatch(t, dir, append([]string{"apply", "--yes", half}, args...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "would close 20 accounts that the roster does not name, more than --sync-max 10") ||
		!strings.Contains(r.stderr, "nothing was sent") {
		t.Fatalf("apply of half the roster: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	e.checkRoster(t, people, nil)
	if _, err := os.Stat(half + ".journal.jsonl"); err == nil {
		t.Error("a journal was written for a refused run")
	}
}
