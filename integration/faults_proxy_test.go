package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// via is the environment with synbatch pointed at another URL (a proxy in
// front of the same Synapse); reads for checking still go straight to it.
func (e *env) via(url string) *env {
	c := *e
	c.server = url
	return &c
}

// journalOutcomes is each row's latest outcome in a journal, by user id.
func journalOutcomes(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r struct {
			Type    string `json:"type"`
			UserID  string `json:"user_id"`
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal(line, &r) == nil && r.Type == "row" {
			out[r.UserID] = r.Outcome
		}
	}
	return out
}

// TestFaultProxyCreatesEveryUserExactly: 300 new users with passwords,
// emails, msisdns and external ids, applied through a proxy that makes 30%
// of writes meet a fault of every kind (429 with each hint, 503, 504 after
// forwarding, reset before and after forwarding). The run exits 0 with no
// row uncertain, and every account read back from Synapse is exactly as the
// manifest says, its password included.
func TestFaultProxyCreatesEveryUserExactly(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := newFaultProxy(t, e.server, 0.30, allFaults...)
	dir := t.TempDir()
	ss := specs(uniq(t), 300)
	writeFile(t, dir, "m.csv", csvOf(ss))
	st := e.via(p.URL).applyJSON(t, dir, 0, "m.csv", "--concurrency", "8")
	if st.Outcomes["done"] != 300 || st.Outcomes["uncertain"] != 0 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	for _, s := range ss {
		e.check(t, s)
	}
}

// TestFaultProxyOneCreateNeverForwardedIsCreatedOnResume: every write's
// connection is closed before it reaches Synapse, so a one-row create cannot
// land; the run must not call it finished. With the faults gone, the same
// command creates the account.
func TestFaultProxyOneCreateNeverForwardedIsCreatedOnResume(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := newFaultProxy(t, e.server, 1, fResetFirst)
	dir := t.TempDir()
	ss := specs(uniq(t), 1)
	writeFile(t, dir, "m.csv", csvOf(ss))
	r := e.via(p.URL).synbatch(t, dir, "apply", "m.csv", "--retries", "2")
	if r.code == 0 || e.user(t, e.id(ss[0].local)) != nil {
		t.Fatalf("exit %d with every write cut before Synapse\n%s%s", r.code, r.stdout, r.stderr)
	}
	p.set(0)
	st := e.via(p.URL).applyJSON(t, dir, 0, "m.csv")
	if st.Outcomes["done"] != 1 {
		t.Fatalf("resume: %+v", st)
	}
	e.check(t, ss[0])
}

// TestFaultProxyPasswordUpdatesSettleOrStayUncertain: new passwords for 60
// existing users through the proxy at 30% faults of every kind. A row
// journaled done has the new password in effect; every other row is
// uncertain, and a rerun writes no password: it settles each by a login
// check (done: the write had landed), or names it and exits 1.
// --resend-uncertain then sets them, and no session of a password check is
// left on any account.
func TestFaultProxyPasswordUpdatesSettleOrStayUncertain(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ss := specs(uniq(t), 60)
	writeFile(t, dir, "create.csv", csvOf(ss))
	e.applyJSON(t, dir, 0, "create.csv")

	var b strings.Builder
	b.WriteString("user_id,action,password\n")
	for i := range ss {
		ss[i].password = "new-" + ss[i].password
		fmt.Fprintf(&b, "%s,update,%s\n", ss[i].local, ss[i].password)
	}
	writeFile(t, dir, "pw.csv", b.String())
	p := newFaultProxy(t, e.server, 0.30, allFaults...)
	first := e.via(p.URL).synbatch(t, dir, "apply", "pw.csv", "--concurrency", "8")
	jp := filepath.Join(dir, "pw.csv.journal.jsonl")
	outcomes := journalOutcomes(t, jp)
	var uncertain []string
	for _, s := range ss {
		switch o := outcomes[e.id(s.local)]; o {
		case "done":
			if !e.login(t, s.local, s.password) {
				t.Errorf("%s journaled done but its new password does not log in", s.local)
			}
		case "uncertain":
			uncertain = append(uncertain, e.id(s.local))
		default:
			t.Errorf("%s: outcome %q\n%s%s", s.local, o, first.stdout, first.stderr)
		}
	}
	t.Logf("%d of %d rows uncertain after the faulty run (exit %d)", len(uncertain), len(ss), first.code)
	if (len(uncertain) > 0) != (first.code == 1) {
		t.Fatalf("exit %d with %d uncertain rows\n%s%s", first.code, len(uncertain), first.stdout, first.stderr)
	}
	p.set(0)
	if len(uncertain) > 0 {
		_, before := p.writesSince(0)
		again := e.via(p.URL).synbatch(t, dir, "apply", "pw.csv")
		sent, _ := p.writesSince(before)
		for _, w := range sent {
			if strings.HasPrefix(w, "PUT /_synapse/admin/v2/users/") || strings.Contains(w, "/reset_password/") {
				t.Errorf("the rerun wrote a password: %s", w)
			}
		}
		// A login check may settle a row now (its write had landed, and
		// the faulty run's own check met a fault): the rerun exits 1 only
		// while a row stays uncertain, and names each such row.
		after := journalOutcomes(t, jp)
		still := 0
		for _, id := range uncertain {
			switch after[id] {
			case "done":
			case "uncertain":
				still++
				if !strings.Contains(again.stdout, id+": uncertain") {
					t.Errorf("the rerun does not name uncertain %s:\n%s", id, again.stdout)
				}
			default:
				t.Errorf("%s: %q after the rerun, want done or uncertain", id, after[id])
			}
		}
		t.Logf("the rerun settled %d of the %d uncertain rows by a login check; %d stay uncertain", len(uncertain)-still, len(uncertain), still)
		if want := min(still, 1); again.code != want {
			t.Fatalf("a rerun leaving %d of %d rows uncertain exits %d, want %d\n%s%s", still, len(uncertain), again.code, want, again.stdout, again.stderr)
		}
	}
	final := e.via(p.URL).synbatch(t, dir, "apply", "pw.csv", "--resend-uncertain")
	if final.code != 0 {
		t.Fatalf("--resend-uncertain: exit %d\n%s%s", final.code, final.stdout, final.stderr)
	}
	for _, s := range ss {
		if !e.login(t, s.local, s.password) {
			t.Errorf("%s: the new password does not log in after --resend-uncertain", s.local)
		}
		devs, err := e.client.Devices(context.Background(), e.id(s.local))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if strings.Contains(d.DisplayName, "synbatch password check") {
				t.Errorf("%s keeps a password check's session %s", s.local, d.DeviceID)
			}
		}
	}
}

// TestSynapseDownBehindProxyFailsNoRow: Synapse is stopped for 20 s behind a
// reverse proxy, which answers 502 meanwhile. The run waits for it as for a
// refused connection and completes with no row failed.
func TestSynapseDownBehindProxyFailsNoRow(t *testing.T) {
	// Not parallel: it stops the server, so it runs before the parallel
	// tests start.
	e := realServer(t)
	p := newFaultProxy(t, e.server, 0)
	ss, _ := stopSynapseMidRun(t, e, p.URL, 20*time.Second)
	for _, s := range ss {
		e.check(t, s)
	}
}

// TestKillNineUnderFaultsThenResume: 300 new users through the proxy at 20%
// faults, the run killed with -9 five times; the last run, with the faults
// gone, exits 0 and every account read back is as the manifest says.
func TestKillNineUnderFaultsThenResume(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := newFaultProxy(t, e.server, 0.20, allFaults...)
	dir := t.TempDir()
	ss := specs(uniq(t), 300)
	writeFile(t, dir, "m.csv", csvOf(ss))
	jpath := filepath.Join(dir, "m.csv.journal.jsonl")
	for _, at := range []int{30, 80, 140, 200, 250} {
		cmd := exec.Command(e.bin, "apply", "m.csv", "--concurrency", "8")
		cmd.Dir = dir
		cmd.Env = e.binEnv(dir, p.URL)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitRows(t, cmd, jpath, at, 10*time.Minute, &errb)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	p.set(0)
	st := e.via(p.URL).applyJSON(t, dir, 0, "m.csv")
	if st.Resumed+st.Outcomes["done"] != 300 || st.Outcomes["uncertain"] != 0 {
		t.Fatalf("resume: %+v", st)
	}
	for _, s := range ss {
		e.check(t, s)
	}
}
