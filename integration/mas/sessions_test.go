package mas

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// masSetLastActive ages a session through the stand-in's test-only route:
// a real MAS records last_active_at as the session is used.
func (r *rig) masSetLastActive(t *testing.T, kind, id string, at time.Time) {
	t.Helper()
	tok, err := r.masTokenErr()
	if err != nil {
		t.Fatal(err)
	}
	code, body := r.call(t, "POST", r.masURL+"_standin/"+kind+"/"+id+"/last-active", tok, map[string]any{"last_active_at": at.UTC().Format(time.RFC3339)})
	if code != 200 {
		t.Fatalf("set last active of %s %s: HTTP %d %v", kind, id, code, body)
	}
}

// masFinished says whether MAS shows the session finished.
func (r *rig) masFinished(t *testing.T, kind, id string) bool {
	t.Helper()
	code, body := r.mas(t, "GET", "/"+kind+"/"+id, nil)
	if code != 200 {
		t.Fatalf("MAS %s %s: HTTP %d %v", kind, id, code, body)
	}
	return resourceOf(body).Attributes["finished_at"] != nil
}

// A user with old and recent sessions of each kind MAS has (compat sessions
// from a password login, each a real device in Synapse; OAuth 2.0 sessions
// with a device; browser sessions) and a delete-devices row (devices=all)
// with --inactive-days 30: apply finishes in MAS exactly the old compat,
// OAuth 2.0 and browser sessions, and the old devices are gone from
// Synapse, while the recent sessions and their devices stay. A rerun with a new journal plans the row unchanged and writes
// nothing to MAS.
func TestMASDeleteDevicesInactiveDaysFinishesOldSessionsKeepsRecent(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	name := uniq(t)
	u := r.masCreateUser(t, name, nil)
	const pw = "a long enough password"
	if code, body := r.mas(t, "POST", "/users/"+u.ID+"/set-password", map[string]any{"password": pw}); code != 204 {
		t.Fatalf("MAS set-password: HTTP %d %v", code, body)
	}
	login := func() (device, token string) {
		code, body := r.masLogin(t, name, pw)
		if code != 200 {
			t.Fatalf("MAS login: HTTP %d %v", code, body)
		}
		return body["device_id"].(string), body["access_token"].(string)
	}
	oldCompatDev, _ := login()
	newCompatDev, newCompatTok := login()
	// The recent device is used against Synapse, as a client would.
	if code, who := r.call(t, "GET", r.server+"/_matrix/client/v3/account/whoami", newCompatTok, nil); code != 200 || who["device_id"] != newCompatDev {
		t.Fatalf("whoami with the recent compat session: HTTP %d %v", code, who)
	}
	compat := map[string]string{} // device → session id
	for _, s := range r.masList(t, "/compat-sessions?filter[user]="+u.ID) {
		compat[s.Attributes["device_id"].(string)] = s.ID
	}
	oldOAuth, oldOAuthDev, _ := r.masOAuth2Login(t, name)
	newOAuth, newOAuthDev, _ := r.masOAuth2Login(t, name)
	tok, err := r.masTokenErr()
	if err != nil {
		t.Fatal(err)
	}
	browser := func() string {
		code, body := r.call(t, "POST", r.masURL+"_standin/user-sessions", tok, map[string]any{"username": name})
		if code != 201 {
			t.Fatalf("browser session: HTTP %d %v", code, body)
		}
		return resourceOf(body).ID
	}
	oldBrowser, newBrowser := browser(), browser()

	now := time.Now()
	days := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	r.masSetLastActive(t, "compat-sessions", compat[oldCompatDev], days(90))
	r.masSetLastActive(t, "oauth2-sessions", oldOAuth, days(45))
	r.masSetLastActive(t, "oauth2-sessions", newOAuth, days(3))
	r.masSetLastActive(t, "user-sessions", oldBrowser, days(90))
	r.masSetLastActive(t, "user-sessions", newBrowser, days(1))
	devs := []string{oldCompatDev, newCompatDev, oldOAuthDev, newOAuthDev}
	for _, d := range devs {
		if !slices.Contains(r.synapseDevices(t, r.id(name)), d) {
			t.Fatalf("Synapse lacks device %s before the run", d)
		}
	}

	sheet := filepath.Join(dir, "devices.csv")
	os.WriteFile(sheet, []byte("action,user_id,devices\ndelete-devices,"+name+",all\n"), 0o600)
	env := r.env(dir, false)
	plan := r.synbatch(t, dir, env, "plan", "--inactive-days", "30", sheet)
	if plan.code != 0 || !strings.Contains(plan.stdout, oldCompatDev) || !strings.Contains(plan.stdout, oldOAuthDev) || !strings.Contains(plan.stdout, oldBrowser) ||
		strings.Contains(plan.stdout, newCompatDev) || strings.Contains(plan.stdout, newOAuthDev) || strings.Contains(plan.stdout, newBrowser) {
		t.Errorf("plan: exit %d, want the old sessions %s, %s and %s and not the recent ones\n%s\n%s", plan.code, oldCompatDev, oldOAuthDev, oldBrowser, plan.stdout, plan.stderr)
	}
	res := r.synbatch(t, dir, env, "apply", "--yes", "--inactive-days", "30", "--journal", filepath.Join(dir, "j1.jsonl"), sheet)
	if res.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	for _, c := range []struct {
		what, kind, id string
		finished       bool
	}{
		{"old compat session", "compat-sessions", compat[oldCompatDev], true},
		{"recent compat session", "compat-sessions", compat[newCompatDev], false},
		{"old OAuth 2.0 session", "oauth2-sessions", oldOAuth, true},
		{"recent OAuth 2.0 session", "oauth2-sessions", newOAuth, false},
		{"old browser session", "user-sessions", oldBrowser, true},
		{"recent browser session", "user-sessions", newBrowser, false},
	} {
		if got := r.masFinished(t, c.kind, c.id); got != c.finished {
			t.Errorf("%s %s: finished %v in MAS, want %v", c.what, c.id, got, c.finished)
		}
	}
	left := r.synapseDevices(t, r.id(name))
	for _, d := range devs {
		want := d == newCompatDev || d == newOAuthDev
		if slices.Contains(left, d) != want {
			t.Errorf("Synapse device %s: present %v, want %v (devices %v)", d, !want, want, left)
		}
	}

	proxy := r.newMASFaultProxy(t, 0)
	again := r.synbatch(t, dir, append(r.env(dir, false), "SYNBATCH_MAS_URL="+proxy.URL()),
		"apply", "--yes", "--inactive-days", "30", "--journal", filepath.Join(dir, "j2.jsonl"), sheet)
	if again.code != 0 || !strings.Contains(again.stdout, "1 unchanged") {
		t.Errorf("rerun: exit %d, want 1 unchanged\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	for k, n := range proxy.Forwarded() {
		if !strings.Contains(k, "personal-sessions") {
			t.Errorf("the rerun wrote to MAS: %d × %s", n, k)
		}
	}
	if got := r.synapseDevices(t, r.id(name)); !slices.Equal(got, left) {
		t.Errorf("Synapse's devices after the rerun %v, want %v", got, left)
	}
}
