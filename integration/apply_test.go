package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/synbatch/synbatch/internal/testenv"
)

// spec is what a test expects of an account.
type spec struct {
	local, display, password string
	emails, msisdns, ids     []string
	admin                    bool
}

func (e *env) check(t *testing.T, s spec) {
	t.Helper()
	u := e.user(t, e.id(s.local))
	if u == nil {
		t.Fatalf("%s does not exist", e.id(s.local))
	}
	var emails, msisdns, ids []string
	for _, tp := range u.Threepids {
		if tp.Medium == "email" {
			emails = append(emails, tp.Address)
		} else {
			msisdns = append(msisdns, tp.Address)
		}
	}
	for _, x := range u.ExternalIDs {
		ids = append(ids, x.AuthProvider+":"+x.ExternalID)
	}
	for _, l := range [][]string{emails, msisdns, ids, s.emails, s.msisdns, s.ids} {
		slices.Sort(l)
	}
	dn := ""
	if u.Displayname != nil {
		dn = *u.Displayname
	}
	if dn != s.display || !slices.Equal(emails, s.emails) || !slices.Equal(msisdns, s.msisdns) || !slices.Equal(ids, s.ids) || bool(u.Admin) != s.admin {
		t.Errorf("%s: got displayname %q emails %v msisdns %v external_ids %v admin %v; want %q %v %v %v %v",
			u.Name, dn, emails, msisdns, ids, u.Admin, s.display, s.emails, s.msisdns, s.ids, s.admin)
	}
	if s.password != "" && !e.login(t, s.local, s.password) {
		t.Errorf("%s: cannot log in with the manifest's password", u.Name)
	}
}

// login reports whether the password is the user's, and logs the session out.
func (e *env) login(t *testing.T, local, password string) bool {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "m.login.password", "password": password,
		"identifier": map[string]string{"type": "m.id.user", "user": local}})
	resp, err := http.Post(e.server+"/_matrix/client/v3/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return false
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	req, _ := http.NewRequest(http.MethodPost, e.server+"/_matrix/client/v3/logout", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+out.AccessToken)
	if r, err := http.DefaultClient.Do(req); err == nil {
		r.Body.Close()
	}
	return true
}

// specs makes n accounts whose every id, address and mapping is new to the
// server (msisdns take a random block, so earlier runs never collide).
func specs(p string, n int) []spec {
	var out []spec
	block := mrand.Int64N(1e6)
	for i := range n {
		l := fmt.Sprintf("%s-%d", p, i)
		out = append(out, spec{local: l, display: fmt.Sprintf("User %s %d", p, i), password: "pw-" + l + "-Xy9",
			emails: []string{l + "@example.org"}, msisdns: []string{fmt.Sprintf("44%06d%04d", block, i)},
			ids: []string{"oidc:sub|" + l + "/x"}, admin: i == 1})
	}
	return out
}

func csvOf(ss []spec) string {
	var b strings.Builder
	b.WriteString("user_id,displayname,password,emails,msisdns,external_ids,admin\n")
	for _, s := range ss {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%t\n", s.local, s.display, s.password, strings.Join(s.emails, ";"),
			strings.Join(s.msisdns, ";"), strings.Join(s.ids, ";"), s.admin)
	}
	return b.String()
}

func jsonlOf(ss []spec) string {
	var b strings.Builder
	for _, s := range ss {
		var ids []map[string]string
		for _, x := range s.ids {
			p, id, _ := strings.Cut(x, ":")
			ids = append(ids, map[string]string{"auth_provider": p, "external_id": id})
		}
		line, _ := json.Marshal(map[string]any{"user_id": s.local, "displayname": s.display, "password": s.password,
			"emails": s.emails, "msisdns": s.msisdns, "external_ids": ids, "admin": s.admin})
		b.Write(append(line, '\n'))
	}
	return b.String()
}

// xlsxOf writes the specs as Excel would: msisdns as numeric cells.
func xlsxOf(t *testing.T, path string, ss []spec) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{{"user_id", "displayname", "password", "emails", "msisdns", "external_ids", "admin"}}
	for _, s := range ss {
		var phone int64
		fmt.Sscan(s.msisdns[0], &phone)
		rows = append(rows, []any{s.local, s.display, s.password, strings.Join(s.emails, ";"), phone, strings.Join(s.ids, ";"), s.admin})
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

func TestCreateFromEachFormatThenNothingToWrite(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	for _, format := range []string{"csv", "xlsx", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			ss := specs(uniq(t), 3)
			path := filepath.Join(dir, "users."+format)
			switch format {
			case "csv":
				writeFile(t, dir, "users.csv", csvOf(ss))
			case "jsonl":
				writeFile(t, dir, "users.jsonl", jsonlOf(ss))
			case "xlsx":
				xlsxOf(t, path, ss)
			}
			st := e.applyJSON(t, dir, 0, path)
			if st.Outcomes["done"] != 3 {
				t.Fatalf("outcomes %v", st.Outcomes)
			}
			for _, s := range ss {
				e.check(t, s)
			}
			// A new journal: every row already matches and nothing is written.
			st = e.applyJSON(t, dir, 0, path, "--journal", filepath.Join(dir, "second.journal"))
			if st.Outcomes["unchanged"] != 3 || st.Writes != 0 {
				t.Fatalf("second apply: outcomes %v, writes %d", st.Outcomes, st.Writes)
			}
		})
	}
}

func TestSamplesAgreeAcrossFormats(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	samples, _ := filepath.Abs(filepath.Join("..", "samples"))
	st := e.applyJSON(t, dir, 0, filepath.Join(samples, "users.csv"), "--journal", filepath.Join(dir, "csv.journal"))
	if st.Outcomes["failed"] != 0 || st.Rows == 0 {
		t.Fatalf("users.csv: %+v", st)
	}
	for _, f := range []string{"users.xlsx", "users.jsonl"} {
		st := e.applyJSON(t, dir, 0, filepath.Join(samples, f), "--journal", filepath.Join(dir, f+".journal"))
		if st.Outcomes["unchanged"] != st.Rows || st.Writes != 0 {
			t.Errorf("%s says something users.csv does not: %+v", f, st)
		}
	}
}

func TestUpdateUpsertAndMerge(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	a, b := p+"-a", p+"-b"
	writeFile(t, dir, "1.csv", fmt.Sprintf("user_id,displayname,password,emails,external_ids\n%s,A,first-pw-1,%s@example.org,oidc:%s\n", a, a, a))
	e.applyJSON(t, dir, 0, "1.csv")

	// upsert on an existing user: the password is the initial one, not reset;
	// lists are merged.
	writeFile(t, dir, "2.csv", fmt.Sprintf("user_id,displayname,password,emails,external_ids\n%s,A2,second-pw-2,%s@example.net,cas:%s\n", a, a, a))
	st := e.applyJSON(t, dir, 0, "2.csv")
	if st.Outcomes["done"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	e.check(t, spec{local: a, display: "A2", password: "first-pw-1", emails: []string{a + "@example.net", a + "@example.org"},
		ids: []string{"cas:" + a, "oidc:" + a}})

	// update changes only the given columns and sets the password.
	writeFile(t, dir, "3.csv", fmt.Sprintf("user_id,action,password,logout_devices\n%s,update,third-pw-3,false\n", a))
	e.applyJSON(t, dir, 0, "3.csv")
	e.check(t, spec{local: a, display: "A2", password: "third-pw-3", emails: []string{a + "@example.net", a + "@example.org"},
		ids: []string{"cas:" + a, "oidc:" + a}})

	// --replace-lists replaces; the clear column clears.
	writeFile(t, dir, "4.csv", fmt.Sprintf("user_id,emails,clear\n%s,%s@example.com,displayname;external_ids\n", a, a))
	e.applyJSON(t, dir, 0, "4.csv", "--replace-lists")
	e.check(t, spec{local: a, emails: []string{a + "@example.com"}})

	// update of a user who does not exist fails that row (exit 1), the others go on.
	writeFile(t, dir, "5.csv", fmt.Sprintf("user_id,displayname\n%s,Bee\n%s,A5\n", b, a))
	st = e.applyJSON(t, dir, 1, "5.csv", "--action", "update")
	if st.Outcomes["failed"] != 1 || st.Outcomes["done"] != 1 || e.user(t, e.id(b)) != nil {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	sum := e.synbatch(t, dir, "journal", "summary", "5.csv.journal.jsonl")
	if !strings.Contains(sum.stdout, "does not exist") {
		t.Fatalf("summary does not name the failure:\n%s", sum.stdout)
	}

	// create with --on-exists: skip (default), fail.
	writeFile(t, dir, "6.csv", fmt.Sprintf("user_id,displayname\n%s,Other\n", a))
	st = e.applyJSON(t, dir, 0, "6.csv", "--action", "create")
	if st.Outcomes["skipped"] != 1 || st.Writes != 0 {
		t.Fatalf("on-exists skip: %+v", st)
	}
	st = e.applyJSON(t, dir, 1, "6.csv", "--action", "create", "--on-exists", "fail", "--journal", "6b.journal")
	if st.Outcomes["failed"] != 1 || st.Writes != 0 {
		t.Fatalf("on-exists fail: %+v", st)
	}
}

func TestGuardsKeepOtherUsersThreepidsAndIDs(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	owner, thief1, thief2 := p+"-owner", p+"-t1", p+"-t2"
	writeFile(t, dir, "owner.csv", fmt.Sprintf("user_id,emails,external_ids\n%s,%s@example.org,oidc:%s\n", owner, owner, owner))
	e.applyJSON(t, dir, 0, "owner.csv")

	writeFile(t, dir, "thieves.csv", fmt.Sprintf("user_id,password,emails,external_ids\n%s,pw-t1-123,%s@EXAMPLE.org,\n%s,pw-t2-123,,oidc:%s\n",
		thief1, owner, thief2, owner))
	st := e.applyJSON(t, dir, 1, "thieves.csv")
	if st.Outcomes["failed"] != 2 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	if e.user(t, e.id(thief1)) != nil || e.user(t, e.id(thief2)) != nil {
		t.Fatal("a guarded row left a (half-)created user")
	}
	// Synapse gives an account created without a display name its localpart.
	e.check(t, spec{local: owner, display: owner, emails: []string{owner + "@example.org"}, ids: []string{"oidc:" + owner}})
	sum := e.synbatch(t, dir, "journal", "summary", "thieves.csv.journal.jsonl")
	if strings.Count(sum.stdout, "belongs to "+e.id(owner)) != 2 {
		t.Fatalf("summary should name the owner twice:\n%s", sum.stdout)
	}
}

func TestBadManifestSendsNothing(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	writeFile(t, dir, "bad.csv", fmt.Sprintf("user_id,displayname,emails,admin,avatar_url\n%s-ok,Fine,,,\n_%s,Bad,,,\n%s-2,X,not-an-email,maybe,http://x/y\n", p, p, p))
	r := e.synbatch(t, dir, "validate", "bad.csv")
	if r.code != 2 {
		t.Fatalf("validate exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"bad.csv:3:user_id:", "bad.csv:4:emails:", "bad.csv:4:admin:", "bad.csv:4:avatar_url:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.synbatch(t, dir, "apply", "bad.csv")
	if r.code != 2 {
		t.Fatalf("apply exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if e.user(t, e.id(p+"-ok")) != nil {
		t.Fatal("apply of an invalid manifest created its valid row's user")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.csv.journal.jsonl")); err == nil {
		t.Fatal("apply of an invalid manifest wrote a journal")
	}
}

func TestXLSXNumericPhoneArrivesAsDigits(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ss := specs(uniq(t), 1)
	xlsxOf(t, filepath.Join(dir, "p.xlsx"), ss)
	e.applyJSON(t, dir, 0, "p.xlsx")
	e.check(t, ss[0])
}

// TestKillNineThenResume kills apply at a random moment of a 1,000-row run
// and runs the same command again: every row must end correct, none
// journaled done twice, and no password in the journal.
func TestKillNineThenResume(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ss := specs(uniq(t), 1000)
	writeFile(t, dir, "big.csv", csvOf(ss))
	jpath := filepath.Join(dir, "big.csv.journal.jsonl")

	// Three kills at different moments, each followed by the same command.
	killedAt := 0
	for _, at := range []int{150, 400, 650} {
		cmd := exec.Command(e.bin, "apply", "big.csv", "--concurrency", "8", "--rate", "0")
		cmd.Dir = dir
		cmd.Env = e.binEnv(dir, e.server)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitRows(t, cmd, jpath, at, 10*time.Minute, &errb)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		killedAt = countRows(t, jpath)
		if killedAt >= 1000 {
			t.Fatalf("the run finished before the kill (%d rows)", killedAt)
		}
		t.Logf("killed after %d journaled rows", killedAt)
	}

	st := e.applyJSON(t, dir, 0, "big.csv", "--concurrency", "8", "--rate", "0")
	if st.Resumed != killedAt || st.Resumed+st.Outcomes["done"]+st.Outcomes["unchanged"] != 1000 {
		t.Fatalf("resume: %+v (killed at %d)", st, killedAt)
	}
	for _, s := range ss {
		s.password = "" // logging in 1,000 times is slow; a sample below
		e.check(t, s)
	}
	for _, i := range []int{0, killedAt - 1, killedAt, killedAt + 1, 999} {
		if i >= 0 && i < 1000 && !e.login(t, ss[i].local, ss[i].password) {
			t.Errorf("%s: cannot log in with the manifest's password", ss[i].local)
		}
	}

	// Each row journaled as finished exactly once; no password anywhere.
	raw, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	final := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r struct {
			Type    string `json:"type"`
			Row     int    `json:"row"`
			Outcome string `json:"outcome"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		if r.Type == "row" {
			final[r.Row]++
		}
	}
	if len(final) != 1000 {
		t.Errorf("journal has %d rows, want 1000", len(final))
	}
	for row, n := range final {
		if n != 1 {
			t.Errorf("row %d journaled %d times", row, n)
		}
	}
	for _, s := range ss {
		if bytes.Contains(raw, []byte(s.password)) {
			t.Fatalf("journal holds %s's password", s.local)
		}
	}
	// And a third run writes nothing.
	st = e.applyJSON(t, dir, 0, "big.csv", "--journal", filepath.Join(dir, "third.journal"), "--rate", "0")
	if st.Writes != 0 || st.Outcomes["unchanged"] != 1000 {
		t.Fatalf("third run: %+v", st)
	}
}

// waitRows waits until the journal at path holds n rows, written by the run
// cmd (a child process: the file is the only state the test can watch, so it
// is polled every few milliseconds); past within, it kills cmd and fails,
// with what the run said on stderr.
func waitRows(t *testing.T, cmd *exec.Cmd, path string, n int, within time.Duration, stderr fmt.Stringer) {
	t.Helper()
	if !testenv.Await(within, func() bool { return countRows(t, path) >= n }) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the run did not journal %d rows in %v:\n%s", n, within, stderr)
	}
}

func countRows(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(`"type":"row"`))
}
