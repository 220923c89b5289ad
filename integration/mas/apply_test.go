package mas

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/testenv"
)

// hrUser is one row of an HR-style onboarding sheet.
type hrUser struct {
	local, name, password string
	emails                []string
	subject               string // an upstream link's subject, or ""
	admin                 bool
}

// hrSheet writes n users (prefix pre) to dir/hr.csv: every user a password
// and one or two emails, every fifth an SSO link at provider, every tenth an
// admin.
func hrSheet(t *testing.T, dir, pre, provider string, n int) (string, []hrUser) {
	t.Helper()
	var users []hrUser
	var b strings.Builder
	b.WriteString("user_id,displayname,password,emails,external_ids,admin\n")
	for i := range n {
		u := hrUser{local: fmt.Sprintf("%s.%04d", pre, i), name: fmt.Sprintf("Staff %s %d", pre, i),
			password: fmt.Sprintf("Pw-%s-%d-xyz", pre, i), emails: []string{fmt.Sprintf("%s.%d@corp.example", pre, i)}, admin: i%10 == 3}
		if i%3 == 0 {
			u.emails = append(u.emails, fmt.Sprintf("%s.%d@home.example", pre, i))
		}
		if i%5 == 1 {
			u.subject = fmt.Sprintf("sub|%s/%d", pre, i)
		}
		ids, admin := "", ""
		if u.subject != "" {
			ids = provider + ":" + u.subject
		}
		if u.admin {
			admin = "true"
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", u.local, u.name, u.password, strings.Join(u.emails, ";"), ids, admin)
		users = append(users, u)
	}
	path := filepath.Join(dir, "hr.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, users
}

// checkHR reads MAS and Synapse back for every user of the sheet: MAS holds
// the user, its admin flag, exactly its emails and exactly its link; Synapse
// has provisioned the account with its display name and emails. Passwords
// are checked through MAS (a login) for every checkEvery-th user.
func checkHR(t *testing.T, r *rig, providerID string, users []hrUser, checkEvery int) {
	t.Helper()
	for i, u := range users {
		mu := r.masUser(t, u.local)
		if mu == nil {
			t.Errorf("%s: not in MAS", u.local)
			continue
		}
		if got := mu.Attributes["admin"] == true; got != u.admin {
			t.Errorf("%s: MAS admin %v, want %v", u.local, got, u.admin)
		}
		emails := r.masEmails(t, mu.ID)
		slices.Sort(emails)
		want := slices.Clone(u.emails)
		slices.Sort(want)
		if !slices.Equal(emails, want) {
			t.Errorf("%s: MAS emails %v, want %v", u.local, emails, want)
		}
		links := r.masLinks(t, mu.ID)
		var wantLinks []string
		if u.subject != "" {
			wantLinks = []string{providerID + "/" + u.subject}
		}
		if !slices.Equal(links, wantLinks) {
			t.Errorf("%s: MAS links %v, want %v", u.local, links, wantLinks)
		}
		su := r.synapseUser(t, r.id(u.local))
		if su == nil {
			t.Errorf("%s: Synapse has not provisioned it", u.local)
			continue
		}
		if su["displayname"] != u.name {
			t.Errorf("%s: Synapse displayname %v, want %q", u.local, su["displayname"], u.name)
		}
		se := synapseEmails(su)
		slices.Sort(se)
		if !slices.Equal(se, want) {
			t.Errorf("%s: Synapse emails %v, want %v", u.local, se, want)
		}
		if checkEvery > 0 && i%checkEvery == 0 && !r.masPasswordWorks(t, u.local, u.password) {
			t.Errorf("%s: MAS refuses the sheet's password", u.local)
		}
	}
}

func hrUsersN(t *testing.T, def int) int {
	if v := os.Getenv("SYNBATCH_MAS_HR_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SYNBATCH_MAS_HR_USERS: %v", err)
		}
		return n
	}
	return def
}

// firstProvider is a provider the rig's MAS offers: its human name and id.
func firstProvider(t *testing.T, r *rig) (string, string) {
	t.Helper()
	ps := r.masProviders(t)
	names := make([]string, 0, len(ps))
	for n := range ps {
		if n != "" && !strings.Contains(n, ":") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		t.Fatal("the rig's MAS has no upstream provider with a human name")
	}
	slices.Sort(names)
	return names[0], ps[names[0]]
}

// An HR sheet applied on a MAS server with only the MAS admin client (no
// Synapse token: MAS issues one for the run) makes every user in MAS with
// its password, emails, link and admin flag, Synapse provisions each, and
// the same sheet applied again sends no write to MAS at all.
func TestMASOnboardHRSheetThenRerunWritesNothing(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, provID := firstProvider(t, r)
	sheet, users := hrSheet(t, dir, uniq(t), provName, hrUsersN(t, 500))
	env := r.env(dir, false)

	start := time.Now()
	res := r.synbatch(t, dir, env, "apply", "--yes", sheet)
	if res.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("apply of %d users: %v", len(users), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(res.stderr, "accounts live in MAS at "+r.masURL) {
		t.Errorf("apply does not say where accounts live: %s", res.stderr)
	}
	checkHR(t, r, provID, users, 10)

	// Again, through a proxy that loses nothing but counts the writes that
	// reach MAS: there must be none.
	proxy := r.newMASFaultProxy(t, 0)
	env2 := append(r.env(dir, false), "SYNBATCH_MAS_URL="+proxy.URL())
	plan := r.synbatch(t, dir, env2, "plan", sheet)
	if plan.code != 0 || !strings.Contains(plan.stdout, fmt.Sprintf("%d rows: %d unchanged", len(users), len(users))) {
		t.Fatalf("plan after apply: exit %d, want all unchanged\n%s\n%s", plan.code, tail(plan.stdout), plan.stderr)
	}
	again := r.synbatch(t, dir, env2, "apply", "--yes", "--journal", filepath.Join(dir, "again.jsonl"), sheet)
	if again.code != 0 {
		t.Fatalf("second apply: exit %d\n%s", again.code, again.stderr)
	}
	for k, n := range proxy.Forwarded() {
		if !strings.Contains(k, "personal-sessions") { // the run's own Synapse token
			t.Errorf("the second apply wrote to MAS: %d × %s", n, k)
		}
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// A MAS-mode server and no MAS admin client: exit 2 before any write, the
// message naming what to configure; MAS and Synapse hold nothing new.
func TestMASServerWithoutMASCredentialsExits2WritingNothing(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	name := uniq(t)
	sheet := filepath.Join(dir, "m.csv")
	os.WriteFile(sheet, []byte("user_id,displayname,password,emails\n"+name+",N,Pw-long-enough-1,"+name+"@corp.example\n"), 0o600)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SYNBATCH_SERVER=" + r.server, "SYNBATCH_TOKEN_FILE=" + r.tokenFile}
	for _, cmd := range [][]string{{"apply", "--yes", sheet}, {"plan", sheet}, {"export", "users", "--out", filepath.Join(dir, "x.csv")}} {
		res := r.synbatch(t, dir, env, cmd...)
		if res.code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", cmd[0], res.code, res.stderr)
		}
		for _, want := range []string{"--mas-client-id", "--mas-client-secret-file", "SYNBATCH_MAS_CLIENT_ID", "mas_client_secret_file", r.masURL} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s: the message does not name %s: %s", cmd[0], want, res.stderr)
			}
		}
	}
	if r.masUser(t, name) != nil {
		t.Error("MAS holds the user")
	}
	if code, _ := r.synapse(t, "GET", "/_synapse/admin/v2/users/"+url.PathEscape(r.id(name)), nil); code != 404 {
		t.Errorf("Synapse has the user: HTTP %d", code)
	}
}

// With 30% of MAS writes losing their answer (resets before, 504s and resets
// after forwarding), every account ends exact, with no duplicate email or
// link and no failed row; then a run killed with SIGKILL mid-way and
// resumed ends the same.
func TestMASLostAnswersAndKillResumeExactlyOnce(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	provName, provID := firstProvider(t, r)
	n := hrUsersN(t, 100) / 2

	t.Run("lost answers", func(t *testing.T) {
		dir := t.TempDir()
		sheet, users := hrSheet(t, dir, uniq(t), provName, n)
		proxy := r.newMASFaultProxy(t, 0.3)
		env := append(r.env(dir, true), "SYNBATCH_MAS_URL="+proxy.URL())
		res := r.synbatch(t, dir, env, "apply", "--yes", "--retries", "20", sheet)
		if res.code != 0 {
			t.Fatalf("apply through the fault proxy: exit %d\n%s\n%s", res.code, tail(res.stdout), res.stderr)
		}
		lost := proxy.Lost()
		t.Logf("answers lost: %v", lost)
		if lost[lostAfter504]+lost[lostResetAfter] == 0 {
			t.Fatal("no answer of a write that landed was lost: the test proves nothing")
		}
		checkHR(t, r, provID, users, 0)
		noFailedRows(t, filepath.Join(dir, "hr.csv.journal.jsonl"))
	})

	t.Run("kill -9 and resume", func(t *testing.T) {
		dir := t.TempDir()
		sheet, users := hrSheet(t, dir, uniq(t), provName, n)
		env := r.env(dir, true)
		cmd := exec.Command(r.bin, "apply", "--yes", "--concurrency", "2", sheet)
		cmd.Dir, cmd.Env = dir, env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once a few rows are journaled, well before the end.
		journalPath := filepath.Join(dir, "hr.csv.journal.jsonl")
		killAtLines(t, cmd, journalPath, 6)
		if r.masUser(t, users[len(users)-1].local) != nil {
			t.Log("the run finished before the kill; the resume has nothing to do")
		}
		res := r.synbatch(t, dir, env, "apply", "--yes", sheet)
		if res.code != 0 {
			noFailedRows(t, journalPath)
			t.Fatalf("resume: exit %d\n%s\n%s", res.code, tail(res.stdout), res.stderr)
		}
		checkHR(t, r, provID, users, 7)
		noFailedRows(t, journalPath)
	})
}

// killAtLines kills the run cmd with -9 once its journal at path holds n
// lines (polled: a child's file is the only state the test can watch), and
// fails if that takes longer than ten minutes (a hang guard).
func killAtLines(t *testing.T, cmd *exec.Cmd, path string, n int) {
	t.Helper()
	if !testenv.Await(10*time.Minute, func() bool { return countLines(path) >= n }) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the run did not journal %d lines in 10 minutes", n)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// noFailedRows reads the journal: no row failed or ended uncertain.
func noFailedRows(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"outcome":"failed"`) || strings.Contains(line, `"outcome":"uncertain"`) {
			t.Errorf("journal: %s", line)
		}
	}
}
