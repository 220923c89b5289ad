package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
)

// TestFirstSIGTERMStopsValidationPromptly: a long validation, on its own
// or before apply's first row, ends within a second of the first SIGTERM
// with exit 3 (stopped early), instead of reading the manifest to its end.
func TestFirstSIGTERMStopsValidationPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 20 MB manifest")
	}
	bin := selfAsSynbatch(t)
	fake := fakesynapse.New("hs.test")
	defer fake.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(fake.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "big.csv")
	f, err := os.Create(manifest)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("user_id,displayname,emails\n")
	// Some seconds of validation on any machine this runs on.
	for i := range 500_000 {
		fmt.Fprintf(w, "u%d,User %d,u%d@example.org\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	env := append(os.Environ(), "SYNBATCH_SERVER="+fake.URL, "SYNBATCH_TOKEN_FILE="+tok, "HOME="+dir)

	for _, args := range [][]string{
		{"validate", "--server-name", "hs.test", manifest},
		{"apply", "--server-name", "hs.test", manifest},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Env, cmd.Dir = env, dir
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Past start-up, into the rows: the signal goes once the run
			// has read into the manifest, however loaded the machine.
			waitReadingInto(t, cmd.Process.Pid, manifest)
			signalled := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				took := time.Since(signalled)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
					t.Fatalf("exit: %v, want code %d", err, exitStopped)
				}
				if took > time.Second {
					t.Fatalf("stopped %v after SIGTERM, want within a second", took.Round(time.Millisecond))
				}
				t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("still running 30 s after SIGTERM")
			}
			if n := fake.Writes.Load(); n != 0 {
				t.Fatalf("%d writes sent", n)
			}
		})
	}
}
