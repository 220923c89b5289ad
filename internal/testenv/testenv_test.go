package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIsolateHidesTheCallersConfigAndServer: after Isolate, the config
// directory and HOME are new and empty, synbatch's variables are gone and
// the test's own switches stay.
func TestIsolateHidesTheCallersConfigAndServer(t *testing.T) {
	t.Setenv("SYNBATCH_SERVER", "https://matrix.example.org")
	t.Setenv("SYNBATCH_CONFIG", "/etc/synbatch.yaml")
	t.Setenv("SYNBATCH_REQUIRE_SYNAPSE", "1")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	mine, _ := os.UserConfigDir()
	if err := os.WriteFile(filepath.Join(mine, "synbatch.yaml"), []byte("map:\n  Mobile: msisdns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cleanup, err := Isolate()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	for _, v := range []string{"SYNBATCH_SERVER", "SYNBATCH_CONFIG"} {
		if got, ok := os.LookupEnv(v); ok {
			t.Errorf("%s=%q still set", v, got)
		}
	}
	if os.Getenv("SYNBATCH_REQUIRE_SYNAPSE") != "1" {
		t.Error("SYNBATCH_REQUIRE_SYNAPSE unset: CI's requirement would turn into a skip")
	}
	cfg, _ := os.UserConfigDir()
	if cfg == mine {
		t.Fatalf("config directory still %s", mine)
	}
	if _, err := os.Stat(filepath.Join(cfg, "synbatch.yaml")); !os.IsNotExist(err) {
		t.Errorf("a synbatch.yaml in the new config directory: %v", err)
	}
	home, _ := os.UserHomeDir()
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 {
		t.Errorf("HOME %s: %v, %d entries, want an empty directory", home, err, len(entries))
	}
}

// TestAwaitReturnsOnceTheStateHoldsAndGivesUpAfterItsTime: Await returns
// true as soon as cond holds (here on its fifth call), and false once its
// time is up for a state that never comes.
func TestAwaitReturnsOnceTheStateHoldsAndGivesUpAfterItsTime(t *testing.T) {
	calls := 0
	if !Await(time.Minute, func() bool { calls++; return calls >= 5 }) || calls != 5 {
		t.Errorf("Await: %d calls, want true after 5", calls)
	}
	if Await(20*time.Millisecond, func() bool { return false }) {
		t.Error("Await of a state that never holds returned true")
	}
}

// TestKillWhenKillsAtTheMomentAndSaysWhenItNeverCame: a run still going
// when ready closes is killed (it does not sleep its minute out); a run that
// ends before ready is an error naming that.
func TestKillWhenKillsAtTheMomentAndSaysWhenItNeverCame(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	ready := make(chan struct{})
	close(ready)
	cmd := exec.Command("sleep", "60")
	if err := KillWhen(cmd, ready, time.Minute); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil || cmd.ProcessState.Success() {
		t.Fatalf("the run was not killed: %v", cmd.ProcessState)
	}
	never := make(chan struct{})
	if err := KillWhen(exec.Command("sleep", "0"), never, time.Minute); err == nil || !strings.Contains(err.Error(), "ended before") {
		t.Fatalf("a run that ended first: %v", err)
	}
}
