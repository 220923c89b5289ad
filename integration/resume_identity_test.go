package integration

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeWithOptionsFlippedSendsNoFinishedRowAgain: a journal whose rows
// all finished (a reset-password, a notice, a generated registration token,
// an upsert with a phone number in national form) is resumed with one
// option, environment variable or config file changed at a time. Each
// resume either finishes or is refused (exit 2), and the server shows that
// no finished row was sent again: the session opened after the reset
// still works (a second reset would log it out), the notice is in the
// user's rooms once, the passwords file holds one token, and the upsert's
// phone number is the one first set (issue 19).
func TestResumeWithOptionsFlippedSendsNoFinishedRowAgain(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	alice, bob, carol := p+"-alice", p+"-bob", p+"-carol"
	e.newUser(t, alice, map[string]any{"password": "pw-" + alice})
	e.newUser(t, bob, nil)
	national := fmt.Sprintf("07700 9%05d", rand.IntN(100000))
	body := "Maintenance tonight " + p
	pw := "Fresh-pass-" + p
	writeFile(t, dir, "m.csv", "user_id,action,password,message,msisdns,displayname,uses_allowed\n"+
		alice+",reset-password,"+pw+",,,,\n"+
		bob+",notice,,"+body+",,,\n"+
		carol+",upsert,,,"+national+",Carol,\n"+
		",registration-token,,,,,1\n")
	base := []string{"apply", "m.csv", "--journal", "j.jsonl", "--yes", "--passwords-out", "pw.csv"}
	run := func(extraEnv []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(e.bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SYNBATCH_SERVER="+e.server, "SYNBATCH_TOKEN_FILE="+e.tokenFile,
			"SYNBATCH_SERVER_NAME="+e.serverName, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
		cmd.Env = append(cmd.Env, extraEnv...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run synbatch: %v", err)
		}
		return result{stdout: out.String(), stderr: errb.String(), code: code}
	}
	if r := run([]string{"SYNBATCH_PHONE_REGION=GB"}, base...); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	session := e.loginDevice(t, alice, pw, "AFTER")
	phones := func() string {
		var s []string
		for _, tp := range e.user(t, e.id(carol)).Threepids {
			s = append(s, tp.Medium+":"+tp.Address)
		}
		return strings.Join(s, ";")
	}
	phone := phones()
	secrets := readFile(t, filepath.Join(dir, "pw.csv"))
	if !strings.Contains(phone, "msisdn:447700") || strings.Count(secrets, "\n") != 2 || e.notices(t, e.id(bob), body) != 1 {
		t.Fatalf("first run: carol %q, passwords file %q, notices %d", phone, secrets, e.notices(t, e.id(bob), body))
	}

	for _, c := range []struct {
		name    string
		env     []string
		args    []string
		config  string
		refused bool
	}{
		{name: "a default action, every row naming its own", env: []string{"SYNBATCH_PHONE_REGION=GB"}, args: []string{"--action", "lock"}},
		{name: "a config file that appeared, saying the same", config: "phone_region: gb\n"},
		{name: "the phone region changed", env: []string{"SYNBATCH_PHONE_REGION=IE"}, refused: true},
		{name: "generate passwords", env: []string{"SYNBATCH_PHONE_REGION=GB"}, args: []string{"--generate-passwords"}, refused: true},
		{name: "replace lists", env: []string{"SYNBATCH_PHONE_REGION=GB"}, args: []string{"--replace-lists"}, refused: true},
	} {
		if err := os.MkdirAll(filepath.Join(dir, ".config"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, ".config", "synbatch.yaml"))
		if c.config != "" {
			writeFile(t, filepath.Join(dir, ".config"), "synbatch.yaml", c.config)
		}
		r := run(c.env, append(base, c.args...)...)
		switch {
		case c.refused && (r.code != 2 || !strings.Contains(r.stderr, "Nothing was sent")):
			t.Errorf("%s: exit %d, want 2 and the refusal\n%s%s", c.name, r.code, r.stdout, r.stderr)
		case !c.refused && r.code != 0:
			t.Errorf("%s: exit %d, want 0\n%s%s", c.name, r.code, r.stdout, r.stderr)
		}
		if !e.tokenWorks(t, session) {
			t.Fatalf("%s: alice's session was logged out: her password was reset again", c.name)
		}
		if n := e.notices(t, e.id(bob), body); n != 1 {
			t.Fatalf("%s: bob has the notice %d times", c.name, n)
		}
		if got := readFile(t, filepath.Join(dir, "pw.csv")); got != secrets {
			t.Fatalf("%s: the passwords file changed (a token generated again):\n%s", c.name, got)
		}
		if got := phones(); got != phone {
			t.Fatalf("%s: carol's numbers %q, were %q", c.name, got, phone)
		}
	}
}
