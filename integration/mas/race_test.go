package mas

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/testenv"
)

// createRace stands in front of the MAS stand-in and makes a killed run's
// create land while the resume creates the same user: it holds the first
// POST /users (never forwarded while its run lives), and when the second
// comes (the resume's, planned after reading no such user) it forwards
// the held one first, then the second, whose answer it records.
type createRace struct {
	*httptest.Server
	rp   *httputil.ReverseProxy
	held chan struct{} // closed when the first create is held

	mu       sync.Mutex
	posts    int
	first    *http.Request
	body     []byte
	statuses []int // answers to the creates after the first
}

func newCreateRace(t *testing.T, masURL string) *createRace {
	t.Helper()
	target, err := url.Parse(masURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &createRace{rp: httputil.NewSingleHostReverseProxy(target), held: make(chan struct{})}
	c.Server = httptest.NewServer(c)
	t.Cleanup(c.Close)
	return c
}

func (c *createRace) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/admin/v1/users" {
		c.rp.ServeHTTP(w, r)
		return
	}
	c.mu.Lock()
	n := c.posts
	c.posts++
	c.mu.Unlock()
	if n == 0 {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.first, c.body = r.Clone(context.Background()), body
		c.mu.Unlock()
		close(c.held)
		<-r.Context().Done() // its run is killed
		return
	}
	if n == 1 {
		c.mu.Lock()
		first, body := c.first, c.body
		c.mu.Unlock()
		first.Body = io.NopCloser(bytes.NewReader(body))
		c.rp.ServeHTTP(httptest.NewRecorder(), first) // the killed run's create lands now
	}
	rec := httptest.NewRecorder()
	c.rp.ServeHTTP(rec, r)
	c.mu.Lock()
	c.statuses = append(c.statuses, rec.Code)
	c.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// TestMASKilledCreateLandingDuringTheResumeIsFinishedNotFailed: a run is
// killed while its create of a user is on its way to MAS; the resume reads
// no such user and creates it, and the killed run's create lands just
// before, so MAS answers the resume 409. The row is planned again: MAS
// then holds the one user, with the sheet's email and password, Synapse
// has provisioned it, and no row failed (it used to fail as "taken").
func TestMASKilledCreateLandingDuringTheResumeIsFinishedNotFailed(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	local := uniq(t)
	email := local + "@corp.example"
	const password = "Race-landing-pw-1"
	sheet := filepath.Join(dir, "race.csv")
	if err := os.WriteFile(sheet, fmt.Appendf(nil, "user_id,password,emails\n%s,%s,%s\n", local, password, email), 0o600); err != nil {
		t.Fatal(err)
	}
	front := newCreateRace(t, r.masURL)
	env := append(r.env(dir, true), "SYNBATCH_MAS_URL="+front.URL+"/")
	cmd := exec.Command(r.bin, "apply", "--yes", sheet)
	cmd.Dir, cmd.Env = dir, env
	if err := testenv.KillWhen(cmd, front.held, 10*time.Minute); err != nil {
		t.Fatal(err)
	}

	res := r.synbatch(t, dir, env, "apply", "--yes", sheet)
	front.mu.Lock()
	statuses := slices.Clone(front.statuses)
	front.mu.Unlock()
	if !slices.Contains(statuses, http.StatusConflict) {
		t.Fatalf("the resume's create was answered %v: the race this test is about did not happen\n%s", statuses, res.stderr)
	}
	if res.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	noFailedRows(t, filepath.Join(dir, "race.csv.journal.jsonl"))
	u := r.masUser(t, local)
	if u == nil {
		t.Fatal("MAS holds no such user")
	}
	if got := r.masEmails(t, u.ID); !slices.Equal(got, []string{email}) {
		t.Errorf("MAS emails %v, want [%s]", got, email)
	}
	if !r.masPasswordWorks(t, local, password) {
		t.Error("the sheet's password does not log in through MAS")
	}
	if r.synapseUser(t, r.id(local)) == nil {
		t.Error("Synapse has not provisioned the user")
	}
}
