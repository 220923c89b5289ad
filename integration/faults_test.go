package integration

import (
	"bytes"
	"encoding/json"
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
	e := realServer(t)
	ss, errb := stopSynapseMidRun(t, e, e.server, time.Minute)
	if !strings.Contains(errb, "the server answers again") {
		t.Errorf("stderr does not say the server went away and came back:\n%s", errb)
	}
	for _, s := range ss[:5] {
		e.check(t, s)
	}
}

// stopSynapseMidRun applies 300 new users (no passwords, so the run is still
// going when the server stops) through server, stops the real Synapse once
// 30 rows are journaled, starts it again after away, and checks the run
// completed on its own with every row done and none failed. It returns the
// users and the run's stderr.
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
	cmd.Env = append(os.Environ(), "SYNBATCH_SERVER="+server, "SYNBATCH_TOKEN_FILE="+e.tokenFile, "SYNBATCH_SERVER_NAME="+e.serverName, "HOME="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for countRows(t, jpath) < 30 {
		time.Sleep(10 * time.Millisecond)
	}
	// The test's own server goes down: whatever happens, start it again.
	up := func() {
		if b, err := exec.Command(script, "up").CombinedOutput(); err != nil {
			t.Errorf("scripts/synapse up: %v\n%s", err, b)
		}
	}
	if b, err := exec.Command(script, "down").CombinedOutput(); err != nil {
		up()
		t.Fatalf("scripts/synapse down: %v\n%s", err, b)
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
