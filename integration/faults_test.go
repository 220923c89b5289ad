package integration

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSynapseStoppedForAMinuteMidRun stops the real Synapse in the middle of
// an apply and starts it again a minute later: the run waits and completes
// on its own, with no row failed.
func TestSynapseStoppedForAMinuteMidRun(t *testing.T) {
	// Not parallel: it stops the server, so it runs before the parallel
	// tests start.
	e := realServer(t)
	ss, errb := stopSynapseMidRun(t, e, e.server, time.Minute)
	if !strings.Contains(errb, "the server answers again") {
		t.Errorf("stderr does not say the server went away and came back:\n%s", errb)
	}
	for _, s := range ss { // every account, read back from the server
		e.check(t, s)
	}
}

// stopSynapseMidRun applies 300 new users (no passwords, so the run is still
// going when the server stops) through server, stops the real Synapse once
// 30 rows are journaled, starts it again after away, and checks the run
// completed on its own with every row done and none failed. It returns the
// users and the run's stderr. Its callers are not parallel tests: the others
// wait for them.
func stopSynapseMidRun(t *testing.T, e *env, server string, away time.Duration) ([]spec, string) {
	t.Helper()
	dir := t.TempDir()
	ss := specs(uniq(t), 300)
	for i := range ss {
		ss[i].password = ""
	}
	writeFile(t, dir, "m.csv", csvOf(ss))
	jpath := filepath.Join(dir, "m.csv.journal.jsonl")
	script, _ := filepath.Abs(filepath.Join("..", "scripts", "synapse"))

	cmd := exec.Command(e.bin, "apply", "m.csv", "--concurrency", "4", "--rate", "40", "--output", "json")
	cmd.Dir = dir
	cmd.Env = e.binEnv(dir, server)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitRows(t, cmd, jpath, 30, 10*time.Minute, &errb)
	// The test's own server goes down: whatever happens, start it again.
	up := func() {
		if b, err := e.synapseScript(t, script, "up").CombinedOutput(); err != nil {
			t.Errorf("scripts/synapse up: %v\n%s", err, b)
		}
	}
	// stop, not down: down waits for the chroot's lock, which another
	// instance's up may hold for minutes, and the run would end first.
	if b, err := e.synapseScript(t, script, "stop").CombinedOutput(); err != nil {
		up()
		t.Fatalf("scripts/synapse stop: %v\n%s", err, b)
	}
	stoppedAt := countRows(t, jpath)
	time.Sleep(away)
	up()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("apply did not complete on its own: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	var st stats
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if st.Outcomes["done"] != 300 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v (stopped at %d)\nstderr:\n%s", st.Outcomes, stoppedAt, errb.String())
	}
	return ss, errb.String()
}

// synapseScript is scripts/synapse for the server under test: its port and
// state, whatever the caller's environment says (a bare `scripts/synapse
// down` stops the instance on the default port, which may be someone
// else's).
func (e *env) synapseScript(t *testing.T, script string, args ...string) *exec.Cmd {
	t.Helper()
	u, err := url.Parse(e.server)
	if err != nil || u.Port() == "" {
		t.Fatalf("server %q: no port to give scripts/synapse", e.server)
	}
	cmd := exec.Command(script, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SYNBATCH_SYNAPSE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A restart beside three busy tiers has taken 43 s: more than the
	// script's default 60 s would be a hang, not a slow machine.
	cmd.Env = append(cmd.Env, "SYNBATCH_SYNAPSE_PORT="+u.Port(), "SYNBATCH_SYNAPSE_STATE="+filepath.Dir(e.tokenFile), "SYNBATCH_SYNAPSE_START_TIMEOUT=300")
	if c := os.Getenv("SYNBATCH_SYNAPSE_CHROOT"); c != "" {
		cmd.Env = append(cmd.Env, "SYNBATCH_SYNAPSE_CHROOT="+c)
	}
	return cmd
}
