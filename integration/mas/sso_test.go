package mas

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A manifest that names a provider MAS does not have (a typo of
// "keycloak (test)", brand name "keycloak"), in a cell, in --auth-provider or in --match-by
// external_id:, is refused by plan and apply with exit 2 before any write,
// the message naming each of MAS's providers by id and human name; MAS
// holds no link afterwards.
func TestMASMistypedProviderExits2NamingMASProvidersWritingNothing(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	name := uniq(t)
	u := r.masCreateUser(t, name, nil)
	provs := r.masProviders(t)
	if len(provs) < 2 {
		t.Fatalf("the rig's MAS lists %d providers, want 2", len(provs))
	}
	cell := filepath.Join(dir, "cell.csv")
	os.WriteFile(cell, []byte("action,user_id,external_ids\nset-external-ids,"+name+",keycloak (tset):s1\n"), 0o600)
	bare := filepath.Join(dir, "bare.csv")
	os.WriteFile(bare, []byte("user_id,external_ids\n"+name+",s1\n"), 0o600)
	match := filepath.Join(dir, "match.csv")
	os.WriteFile(match, []byte("action,external_id\nlock,s1\n"), 0o600)
	env := r.env(dir, false)
	runs := [][]string{
		{"plan", cell},
		{"apply", "--yes", cell},
		{"apply", "--yes", "--action", "set-external-ids", "--auth-provider", "keycloack", bare},
		{"plan", "--match-by", "external_id:odic", match},
	}
	for _, args := range runs {
		res := r.synbatch(t, dir, env, args...)
		if res.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s\n%s", args, res.code, res.stdout, res.stderr)
			continue
		}
		for human, id := range provs {
			if !strings.Contains(res.stderr, id+" ("+human) {
				t.Errorf("%v: the message does not name MAS's provider %s (%s): %s", args, id, human, res.stderr)
			}
		}
		if !strings.Contains(res.stderr, "nothing was sent") {
			t.Errorf("%v: the message does not say nothing was sent: %s", args, res.stderr)
		}
	}
	if links := r.masLinks(t, u.ID); len(links) != 0 {
		t.Errorf("MAS holds links %v after refused runs", links)
	}
}

// idpUser is an account that exists in MAS before the IdP export is applied.
type idpUser struct {
	local, email, subject string
	id                    string // MAS user id
}

// idpSetup creates n MAS users with one email each (through MAS's admin
// API, not synbatch), plus one more user already linked to the subject the
// export gives users[conflictAt], and writes the IdP export: one row per
// user keyed by email with its subject, and every seventh row an address
// nobody has. It returns the export, the users and the other user's id.
func idpSetup(t *testing.T, r *rig, dir, provID string, n, conflictAt int) (string, []idpUser, []string, string) {
	t.Helper()
	pre := uniq(t)
	users := make([]idpUser, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u := idpUser{local: fmt.Sprintf("%s.%04d", pre, i), email: fmt.Sprintf("%s.%d@corp.example", pre, i), subject: fmt.Sprintf("kc-%s-%d", pre, i)}
				mu := r.masCreateUser(t, u.local, nil)
				if code, body := r.mas(t, "POST", "/user-emails", map[string]any{"user_id": mu.ID, "email": u.email}); code != 201 {
					t.Errorf("add email %s: HTTP %d %v", u.email, code, body)
				}
				u.id = mu.ID
				users[i] = u
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	other := r.masCreateUser(t, pre+".other", nil)
	if code, body := r.mas(t, "POST", "/upstream-oauth-links", map[string]any{"user_id": other.ID, "provider_id": provID, "subject": users[conflictAt].subject}); code != 201 {
		t.Fatalf("link the other user: HTTP %d %v", code, body)
	}
	var b strings.Builder
	b.WriteString("email,external_ids\n")
	var nobody []string
	for i, u := range users {
		fmt.Fprintf(&b, "%s,%s\n", u.email, u.subject)
		if i%7 == 3 {
			e := fmt.Sprintf("%s.gone%d@corp.example", pre, i)
			nobody = append(nobody, e)
			fmt.Fprintf(&b, "%s,kc-%s-gone-%d\n", e, pre, i)
		}
	}
	path := filepath.Join(dir, "idp.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, users, nobody, other.ID
}

// checkIdPLinks reads MAS back: every user holds exactly its subject's link,
// but the one whose subject another user held, which holds none; the other
// user keeps its link.
func checkIdPLinks(t *testing.T, r *rig, provID string, users []idpUser, conflictAt int, otherID string) {
	t.Helper()
	for i, u := range users {
		want := []string{provID + "/" + u.subject}
		if i == conflictAt {
			want = nil
		}
		if got := r.masLinks(t, u.id); !slices.Equal(got, want) {
			t.Errorf("%s: MAS links %v, want %v", u.local, got, want)
		}
	}
	if got, want := r.masLinks(t, otherID), []string{provID + "/" + users[conflictAt].subject}; !slices.Equal(got, want) {
		t.Errorf("the other user's links %v, want %v (a linked subject is never moved)", got, want)
	}
}

// lastOutcomes reads a journal: each row's last outcome and error.
func lastOutcomes(t *testing.T, path string) map[int][2]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][2]string{}
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Type, Outcome, Error string
			Row                  int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Type == "row" && rec.Outcome != "" {
			out[rec.Row] = [2]string{rec.Outcome, rec.Error}
		}
	}
	return out
}

// checkIdPJournal: the rows of addresses nobody has failed naming the
// address, the conflict row failed naming the other user, every other row
// is done or unchanged: no row failed for any other reason.
func checkIdPJournal(t *testing.T, path string, users []idpUser, nobody []string, conflictAt int) {
	t.Helper()
	outs := lastOutcomes(t, path)
	row, gone, matched := 2, 0, 0
	for i := range users {
		o := outs[row]
		switch {
		case i == conflictAt:
			if o[0] != "failed" || !strings.Contains(o[1], "another MAS user") {
				t.Errorf("row %d (the conflict): %v, want a conflict naming another MAS user", row, o)
			}
		case o[0] == "done" || o[0] == "unchanged":
			matched++
		default:
			t.Errorf("row %d (%s): %v, want done", row, users[i].email, o)
		}
		row++
		if i%7 == 3 {
			if o := outs[row]; o[0] != "failed" || !strings.Contains(o[1], "no MAS user has email "+nobody[gone]) {
				t.Errorf("row %d (%s, nobody's): %v, want failed naming the address", row, nobody[gone], o)
			}
			gone++
			row++
		}
	}
	if len(outs) != row-2 {
		t.Errorf("journal has %d rows, want %d", len(outs), row-2)
	}
}

func idpArgs(provName string) []string {
	return []string{"--match-by", "email", "--auth-provider", provName, "--action", "set-external-ids"}
}

// An IdP export keyed by email (300 accounts; SYNBATCH_MAS_IDP_USERS sets
// another size), with addresses that match nobody and one subject already
// linked to another user: plan shows each link and the conflict, apply
// writes the rest, MAS then holds exactly those links (the other user's
// untouched), and a rerun sends no write to MAS.
func TestMASIdPExportByEmailLinksEveryAccountRerunWritesNothing(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, provID := firstProvider(t, r)
	n := idpUsersN(t, 300)
	conflictAt := n / 2
	export, users, nobody, otherID := idpSetup(t, r, dir, provID, n, conflictAt)
	env := r.env(dir, false)

	plan := r.synbatch(t, dir, env, append([]string{"plan"}, append(idpArgs(provName), export)...)...)
	for i, u := range users {
		line := fmt.Sprintf(" %s set-external-ids: update: external_ids: (none) → %s:%s", r.id(u.local), provName, u.subject)
		if i == conflictAt {
			line = "external id " + provName + ":" + u.subject + " belongs to another MAS user (" + otherID + ")"
		}
		if !strings.Contains(plan.stdout+plan.stderr, line) {
			t.Errorf("plan does not show %q", line)
		}
	}
	for _, e := range nobody {
		if !strings.Contains(plan.stdout+plan.stderr, "no MAS user has email "+e) {
			t.Errorf("plan does not say nobody has %s", e)
		}
	}
	if t.Failed() {
		t.Fatalf("plan: exit %d\n%s\n%s", plan.code, tail(plan.stdout), plan.stderr)
	}
	for _, u := range users {
		if got := r.masLinks(t, u.id); len(got) != 0 {
			t.Fatalf("plan wrote a link: %s has %v", u.local, got)
		}
	}

	journal := filepath.Join(dir, "apply.jsonl")
	start := time.Now()
	res := r.synbatch(t, dir, env, append([]string{"apply", "--yes", "--journal", journal}, append(idpArgs(provName), export)...)...)
	t.Logf("apply of %d rows: exit %d in %v", len(users)+len(nobody), res.code, time.Since(start).Round(time.Millisecond))
	checkIdPLinks(t, r, provID, users, conflictAt, otherID)
	checkIdPJournal(t, journal, users, nobody, conflictAt)

	proxy := r.newMASFaultProxy(t, 0)
	env2 := append(r.env(dir, false), "SYNBATCH_MAS_URL="+proxy.URL())
	again := r.synbatch(t, dir, env2, append([]string{"apply", "--yes", "--journal", filepath.Join(dir, "again.jsonl")}, append(idpArgs(provName), export)...)...)
	if !strings.Contains(again.stdout, fmt.Sprintf("%d unchanged", len(users)-1)) {
		t.Errorf("rerun: want %d unchanged\n%s\n%s", len(users)-1, tail(again.stdout), again.stderr)
	}
	for k, n := range proxy.Forwarded() {
		if !strings.Contains(k, "personal-sessions") {
			t.Errorf("the rerun wrote to MAS: %d × %s", n, k)
		}
	}
	checkIdPLinks(t, r, provID, users, conflictAt, otherID)
}

// The same export with 30% of MAS writes losing their answer, then another
// killed with SIGKILL mid-way and resumed: no duplicate link, no row failed
// but the ones that name nobody and the conflict, the other user's link
// untouched.
func TestMASIdPExportLostAnswersAndKillResumeLinkOnce(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	provName, provID := firstProvider(t, r)
	n := max(idpUsersN(t, 300)/3, 10)

	t.Run("lost answers", func(t *testing.T) {
		dir := t.TempDir()
		export, users, nobody, otherID := idpSetup(t, r, dir, provID, n, 1)
		proxy := r.newMASFaultProxy(t, 0.3)
		env := append(r.env(dir, true), "SYNBATCH_MAS_URL="+proxy.URL())
		journal := filepath.Join(dir, "j.jsonl")
		r.synbatch(t, dir, env, append([]string{"apply", "--yes", "--retries", "20", "--journal", journal}, append(idpArgs(provName), export)...)...)
		lost := proxy.Lost()
		t.Logf("answers lost: %v", lost)
		if lost[lostAfter504]+lost[lostResetAfter] == 0 {
			t.Fatal("no answer of a write that landed was lost: the test proves nothing")
		}
		checkIdPLinks(t, r, provID, users, 1, otherID)
		checkIdPJournal(t, journal, users, nobody, 1)
	})

	t.Run("kill -9 and resume", func(t *testing.T) {
		dir := t.TempDir()
		export, users, nobody, otherID := idpSetup(t, r, dir, provID, n, 1)
		env := r.env(dir, true)
		journal := filepath.Join(dir, "j.jsonl")
		args := append([]string{"apply", "--yes", "--concurrency", "2", "--journal", journal}, append(idpArgs(provName), export)...)
		r.killAfter(t, dir, env, journal, 6, args...)
		killedAt := len(lastOutcomes(t, journal))
		t.Logf("killed with %d rows journaled", killedAt)
		r.synbatch(t, dir, env, args...)
		checkIdPLinks(t, r, provID, users, 1, otherID)
		checkIdPJournal(t, journal, users, nobody, 1)
	})
}

func idpUsersN(t *testing.T, def int) int {
	if v := os.Getenv("SYNBATCH_MAS_IDP_USERS"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("SYNBATCH_MAS_IDP_USERS: %v", err)
		}
		return n
	}
	return def
}

// Rows keyed by --match-by external_id:PROVIDER find their users through
// MAS's upstream links (Synapse holds no external ids on a MAS server):
// lock rows keyed by subject lock exactly the linked users in MAS, and a
// subject nobody has fails its row naming it.
func TestMASMatchByExternalIDFindsUsersThroughMASLinks(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, provID := firstProvider(t, r)
	pre := uniq(t)
	var ids []string
	var b strings.Builder
	b.WriteString("action,external_id\n")
	for i := range 3 {
		u := r.masCreateUser(t, fmt.Sprintf("%s.%d", pre, i), nil)
		sub := fmt.Sprintf("kc-%s-%d", pre, i)
		if code, body := r.mas(t, "POST", "/upstream-oauth-links", map[string]any{"user_id": u.ID, "provider_id": provID, "subject": sub}); code != 201 {
			t.Fatalf("link: HTTP %d %v", code, body)
		}
		ids = append(ids, u.ID)
		if i < 2 {
			fmt.Fprintf(&b, "lock,%s\n", sub)
		}
	}
	fmt.Fprintf(&b, "lock,kc-%s-nobody\n", pre)
	sheet := filepath.Join(dir, "lock.csv")
	os.WriteFile(sheet, []byte(b.String()), 0o600)
	journal := filepath.Join(dir, "j.jsonl")
	res := r.synbatch(t, dir, r.env(dir, false), "apply", "--yes", "--journal", journal, "--match-by", "external_id:"+provName, sheet)
	for i, id := range ids {
		code, body := r.mas(t, "GET", "/users/"+id, nil)
		if code != 200 {
			t.Fatalf("MAS GET user: HTTP %d", code)
		}
		locked := resourceOf(body).Attributes["locked_at"] != nil
		if locked != (i < 2) {
			t.Errorf("user %d: locked %v, want %v\n%s\n%s", i, locked, i < 2, res.stdout, res.stderr)
		}
	}
	outs := lastOutcomes(t, journal)
	if o := outs[4]; o[0] != "failed" || !strings.Contains(o[1], "no MAS user has external id "+provName+":kc-"+pre+"-nobody") {
		t.Errorf("row 4 (nobody's subject): %v", o)
	}
}

// killAfter runs synbatch with args in dir and kills it with SIGKILL once
// its journal has lines lines (well before the end of the run).
func (r *rig) killAfter(t *testing.T, dir string, env []string, journal string, lines int, args ...string) {
	t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Dir, cmd.Env = dir, env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAtLines(t, cmd, journal, lines)
}
