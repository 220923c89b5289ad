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

// TestFirstSIGTERMStopsValidationBeforeItsEnd: a long validation, on its
// own or before apply's first row, ends at the first SIGTERM with exit 3
// (stopped early) instead of reading the manifest to its end. The last
// row is invalid, so a validation that read to the end would name it:
// the proof is where it stopped, not how fast (a loaded machine took
// 1.9 s to exit where a quiet one takes milliseconds).
func TestFirstSIGTERMStopsValidationBeforeItsEnd(t *testing.T) {
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
	const rows = 500_000
	for i := range rows {
		fmt.Fprintf(w, "u%d,User %d,u%d@example.org\n", i, i, i)
	}
	w.WriteString("not a user id!,Last,last@example.org\n")
	lastRow := fmt.Sprint(rows + 2)
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
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
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
					t.Fatalf("exit: %v, want code %d\n%s", err, exitStopped, stderr.String())
				}
				if strings.Contains(stderr.String(), lastRow) {
					t.Fatalf("validation read to the last row (%s) after SIGTERM:\n%s", lastRow, stderr.String())
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
			dir := t.TempDir()
			manifest := filepath.Join(dir, "users.csv")
			var rows strings.Builder
			rows.WriteString("user_id,displayname\n")
			for i := range 40 {
				fmt.Fprintf(&rows, "u%d,User %d\n", i, i)
			}
			if os.WriteFile(manifest, []byte(rows.String()), 0o600) != nil {
				t.Fatal("write the manifest")
			}
			stdout := stopAtFirstSIGTERM(t, bin, dir, append(args, manifest), func(*fakesynapse.Server) {}, accountRead)
			if n := strings.Count(stdout, "\n"); n >= 40 {
				t.Fatalf("%d lines planned after the first SIGTERM, want fewer than the 40 rows:\n%s", n, stdout)
			}
		})
	}
}

// TestFirstSIGTERMStopsExports: exports only read, so the first SIGTERM
// stops them (exit 3, "run the same command again"), where it used to be
// announced and then ignored until a second one. export data finishes the
// bundle in flight and starts no other.
func TestFirstSIGTERMStopsExports(t *testing.T) {
	t.Parallel()
	bin := selfAsSynbatch(t)
	const n = 40
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("@u%d:hs.test", i))
	}
	setup := func(fake *fakesynapse.Server) {
		for _, id := range ids {
			fake.Put(fakesynapse.User{Name: id})
		}
	}
	t.Run("users", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "users.csv")
		stopAtFirstSIGTERM(t, bin, dir, []string{"export", "users", "--concurrency", "1", "--out", out}, setup, accountRead)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a stopped export left %s as if complete: %v", out, err)
		}
	})
	t.Run("data", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "bundles")
		// Held: a read of the bundles, past the users' resolution (which
		// the first SIGTERM ends at once, with no bundle).
		devices := func(path string) bool { return strings.HasSuffix(path, "/devices") }
		stdout := stopAtFirstSIGTERM(t, bin, dir, append([]string{"export", "data", "--concurrency", "1", "--out", out}, ids...), setup, devices)
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var bundles int
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(out, e.Name(), "manifest.json")); err == nil {
				bundles++
			}
		}
		if bundles != 1 {
			t.Fatalf("%d complete bundles after the first SIGTERM, want the one in flight (--concurrency 1) of %d\n%s", bundles, n, stdout)
		}
	})
}

// accountRead is a read of one account, the first of a row's.
func accountRead(path string) bool { return strings.HasPrefix(path, "/_synapse/admin/v2/users/@") }

// stopAtFirstSIGTERM runs synbatch with args against a fake (setup adds
// what it serves) that holds every read of a path held names until
// synbatch announces the stop: the SIGTERM comes while reads are in
// flight, with no sleep. It wants exit 3 and returns stdout.
func stopAtFirstSIGTERM(t *testing.T, bin, dir string, args []string, setup func(*fakesynapse.Server), held func(path string) bool) string {
	t.Helper()
	fake := fakesynapse.New("hs.test")
	defer fake.Close()
	setup(fake)
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fake.Fault = func(_ http.ResponseWriter, r *http.Request) bool {
		if held(r.URL.Path) {
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
	tok := filepath.Join(dir, "token")
	if os.WriteFile(tok, []byte(fake.Token), 0o600) != nil {
		t.Fatal("write the token")
	}
	cmd := exec.Command(bin, args...)
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
	ended := make(chan error, 1)
	go func() { <-scanned; ended <- cmd.Wait() }()
	select {
	case err = <-ended:
	case <-time.After(2 * time.Minute): // a hang guard
		cmd.Process.Kill()
		t.Fatalf("still running 2 minutes after the stop was announced\n%s", errText.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
		t.Fatalf("exit: %v, want code %d\nstdout:\n%s\nstderr:\n%s", err, exitStopped, stdout.String(), errText.String())
	}
	return stdout.String()
}
