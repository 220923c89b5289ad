package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// TestFirstSIGTERMStopsPlan: the first SIGTERM to plan (and apply
// --dry-run) ends it with exit 3 (stopped early) instead of printing
// "stopping" and planning every row anyway. The fake holds every account
// read until the stop is announced on stderr, so the signal comes while
// rows are in flight, with no sleep.
func TestFirstSIGTERMStopsPlan(t *testing.T) {
	t.Parallel()
	bin := selfAsSynbatch(t)
	for _, args := range [][]string{{"plan"}, {"apply", "--dry-run"}} {
		t.Run(args[0], func(t *testing.T) {
			fake := fakesynapse.New("hs.test")
			defer fake.Close()
			arrived, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			fake.Fault = func(_ http.ResponseWriter, r *http.Request) bool {
				if strings.HasPrefix(r.URL.Path, "/_synapse/admin/v2/users/@") {
					once.Do(func() { close(arrived) })
					<-release
				}
				return false
			}
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			dir := t.TempDir()
			tok := filepath.Join(dir, "token")
			manifest := filepath.Join(dir, "users.csv")
			var rows strings.Builder
			rows.WriteString("user_id,displayname\n")
			for i := range 40 {
				fmt.Fprintf(&rows, "u%d,User %d\n", i, i)
			}
			if os.WriteFile(tok, []byte(fake.Token), 0o600) != nil || os.WriteFile(manifest, []byte(rows.String()), 0o600) != nil {
				t.Fatal("write inputs")
			}
			cmd := exec.Command(bin, append(args, manifest)...)
			cmd.Env = []string{"SYNBATCH_SERVER=" + fake.URL, "SYNBATCH_TOKEN_FILE=" + tok, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stopping := make(chan struct{})
			var errText strings.Builder
			scanned := make(chan struct{})
			go func() {
				defer close(scanned)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					errText.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "synbatch: stopping") {
						close(stopping)
					}
				}
			}()
			select {
			case <-arrived:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("no account read came in 30 s")
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-stopping:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("no stop announced 30 s after SIGTERM")
			}
			close(release)
			<-scanned
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
				t.Fatalf("exit: %v, want code %d\nstdout:\n%s\nstderr:\n%s", err, exitStopped, stdout.String(), errText.String())
			}
			if n := strings.Count(stdout.String(), "\n"); n >= 40 {
				t.Fatalf("%d lines planned after the first SIGTERM, want fewer than the 40 rows:\n%s", n, stdout.String())
			}
		})
	}
}
