package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/journal"
)

// selfAsSynbatch returns a path that runs this test binary as synbatch
// (TestMain dispatches on the name).
func selfAsSynbatch(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "synbatch")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestKillNineFiftyTimes kills apply with SIGKILL at random moments, fifty
// times, resuming each time: in the end every row is applied once (no
// password set twice), the journal parses, and each row is journaled
// finished exactly once.
func TestKillNineFiftyTimes(t *testing.T) {
	t.Parallel()
	bin := selfAsSynbatch(t)
	fake := fakesynapse.New("hs.test")
	defer fake.Close()
	fake.Fault = func(http.ResponseWriter, *http.Request) bool {
		time.Sleep(time.Millisecond) // a run lasts long enough to be killed in
		return false
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(fake.Token), 0o600)
	var b strings.Builder
	b.WriteString("user_id,password,displayname,emails,external_ids\n")
	const rows = 300
	for i := range rows {
		fmt.Fprintf(&b, "k%d,pw-%d-secret,K %d,k%d@example.org,oidc:k%d\n", i, i, i, i, i)
	}
	manifest := filepath.Join(dir, "m.csv")
	os.WriteFile(manifest, []byte(b.String()), 0o600)
	jpath := manifest + ".journal.jsonl"
	// A home and config directory of its own: it runs beside other tests.
	env := append(os.Environ(), "SYNBATCH_SERVER="+fake.URL, "SYNBATCH_TOKEN_FILE="+tok, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))

	for i := range 50 {
		cmd := exec.Command(bin, "apply", manifest, "--concurrency", "8", "--rate", "0")
		cmd.Env, cmd.Dir = env, dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the journal has grown by a random amount: somewhere in
		// the middle of the work, never only during start-up.
		size := func() int64 {
			fi, err := os.Stat(jpath)
			if err != nil {
				return 0
			}
			return fi.Size()
		}
		target := size() + int64(rand.IntN(4000))
		deadline := time.Now().Add(5 * time.Second)
		for size() < target && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := journal.Load(jpath); err != nil {
			t.Fatalf("after kill %d the journal does not load: %v", i, err)
		}
	}
	before := fake.Writes.Load()
	t.Logf("the killed runs sent %d writes", before)
	if before < rows/4 {
		t.Fatalf("the killed runs did little (%d writes): the kills came too early to test anything", before)
	}
	cmd := exec.Command(bin, "apply", manifest, "--concurrency", "8", "--rate", "0")
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	for i := range rows {
		u := fake.User(fmt.Sprintf("@k%d:hs.test", i))
		if u == nil || u.Displayname != fmt.Sprintf("K %d", i) || u.PasswordSets != 1 || len(u.Threepids) != 1 || len(u.ExternalIDs) != 1 {
			t.Fatalf("row %d: %+v", i, u)
		}
	}
	raw, _ := os.ReadFile(jpath)
	finals := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r journal.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		if r.Type == "row" && r.Outcome.Final() {
			finals[r.Key]++
		}
	}
	if len(finals) != rows {
		t.Fatalf("%d rows finished in the journal, want %d", len(finals), rows)
	}
	for k, n := range finals {
		if n != 1 {
			t.Fatalf("row %s journaled finished %d times", k, n)
		}
	}
	if bytes.Contains(raw, []byte("-secret")) {
		t.Fatal("the journal holds a password")
	}
}
