package pipeline

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/journal"
)

// loseFirstWrites answers the first n writes matching method by closing
// the connection: before the server saw them (before) or after it applied
// them (a reset or a proxy's 504 after forwarding).
func loseFirstWrites(r *rig, method string, n int64, before bool, code int) *atomic.Int64 {
	var seen atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != method || !strings.Contains(req.URL.Path, "/_synapse/admin/") || seen.Add(1) > n {
			return false
		}
		if !before {
			r.fake.Config.Handler.ServeHTTP(&discard{h: http.Header{}}, req)
		}
		if code != 0 {
			w.WriteHeader(code)
			return true
		}
		reset(w)
		return true
	}
	return &seen
}

// TestLostCreateNeverReachedServerIsSentAgain: a new account's create whose
// connection was closed before it reached the server is sent again (the
// account did not exist, so nobody can be logged out) and the row is done.
func TestLostCreateNeverReachedServerIsSentAgain(t *testing.T) {
	r := newRig(t)
	loseFirstWrites(r, http.MethodPut, 1, true, 0)
	st, err := r.apply(r.manifest("m.csv", "user_id,action,password,emails\nnew1,create,s3cret,n@example.org\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	u := r.fake.User("@new1:hs.test")
	if st.Outcomes["done"] != 1 || u == nil || u.Password != "s3cret" || u.PasswordSets != 1 {
		t.Fatalf("outcomes %v, user %+v", st.Outcomes, u)
	}
}

// TestLostCreateThatLandedIsDone: a create applied by the server whose answer
// was lost is read back: the account exists, so the create (with its
// password) landed, and the row is done without a second password.
func TestLostCreateThatLandedIsDone(t *testing.T) {
	for _, code := range []int{0, http.StatusGatewayTimeout} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r := newRig(t)
			loseFirstWrites(r, http.MethodPut, 1, false, code)
			st, err := r.apply(r.manifest("m.csv", "user_id,password,displayname\nnew2,s3cret,N\n"), filepath.Join(r.dir, "j"), nil)
			if err != nil {
				t.Fatal(err)
			}
			u := r.fake.User("@new2:hs.test")
			if st.Outcomes["done"] != 1 || st.Outcomes["uncertain"] != 0 || u == nil || u.PasswordSets != 1 || u.Displayname != "N" {
				t.Fatalf("outcomes %v, user %+v", st.Outcomes, u)
			}
		})
	}
}

// TestLostPasswordAnswerSettledByLoginCheck: an update's password write that
// landed but lost its answer is settled by logging in with the new password:
// the row is done, the password was set once, and the check's session is
// logged out again.
func TestLostPasswordAnswerSettledByLoginCheck(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@pat:hs.test", Password: "old"})
	loseFirstWrites(r, http.MethodPut, 1, false, 0)
	st, err := r.apply(r.manifest("m.csv", "user_id,action,password\npat,update,n3w\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	u := r.fake.User("@pat:hs.test")
	if st.Outcomes["done"] != 1 || u.PasswordSets != 1 || u.Password != "n3w" || u.Sessions != 0 || r.fake.Logins.Load() == 0 {
		t.Fatalf("outcomes %v, user %+v, logins %d", st.Outcomes, u, r.fake.Logins.Load())
	}
}

// TestUncertainRowIsNeverCountedFinished: an update's password write lost
// before it reached the server cannot be told from one the server is still
// working on: the row is uncertain, every later run checks it again and
// reports it (it is never "finished by an earlier run"), and
// --resend-uncertain sends it.
func TestUncertainRowIsNeverCountedFinished(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@pat:hs.test", Password: "old"})
	loseFirstWrites(r, http.MethodPut, 1, true, 0)
	src := r.manifest("m.csv", "user_id,action,password\npat,update,n3w\n")
	jp := filepath.Join(r.dir, "j")
	for run := 1; run <= 2; run++ {
		st, err := r.apply(src, jp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Outcomes["uncertain"] != 1 || st.Resumed != 0 || st.Failed() != 1 {
			t.Fatalf("run %d: %+v, want the row uncertain again and not resumed", run, st)
		}
	}
	if u := r.fake.User("@pat:hs.test"); u.PasswordSets != 0 {
		t.Fatalf("the password was sent again without --resend-uncertain: %+v", u)
	}
	st, err := r.apply(src, jp, func(c *Config) { c.ResendUncertain = true })
	if err != nil {
		t.Fatal(err)
	}
	if u := r.fake.User("@pat:hs.test"); st.Outcomes["done"] != 1 || u.PasswordSets != 1 || u.Password != "n3w" {
		t.Fatalf("resend: %+v, user %+v", st, u)
	}
	// Settled: the next run finds it finished.
	if st, err := r.apply(src, jp, nil); err != nil || st.Resumed != 1 {
		t.Fatalf("after resend: %v %+v", err, st)
	}
}

// TestUnsurePasswordRowThatThenFailsStaysUncertain: after a password write
// lost its answer, the row's later attempts fail with 503 until its tries run
// out. A failed row is redone by a resume, so it must be journaled uncertain
// instead, and the resume must not send the password again.
func TestUnsurePasswordRowThatThenFailsStaysUncertain(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@pat:hs.test", Password: "old"})
	r.fake.NoPasswordLogin = true
	var lost atomic.Bool
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPut && lost.CompareAndSwap(false, true) {
			r.fake.Config.Handler.ServeHTTP(&discard{h: http.Header{}}, req)
			reset(w)
			return true
		}
		if lost.Load() && req.Method == http.MethodGet {
			errJSON503(w)
			return true
		}
		return false
	}
	src := r.manifest("m.csv", "user_id,action,password\npat,update,n3w\n")
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(src, jp, func(c *Config) { c.DownAfter = 1000 })
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["uncertain"] != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v, want uncertain", st.Outcomes)
	}
	r.fake.Fault = nil
	if _, err := r.apply(src, jp, nil); err != nil {
		t.Fatal(err)
	}
	if u := r.fake.User("@pat:hs.test"); u.PasswordSets != 1 {
		t.Fatalf("password set %d times, want once", u.PasswordSets)
	}
}

func errJSON503(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"upstream away"}`))
}

// TestGatewayErrorsAcrossRowsWaitForTheServer: a Synapse restarting behind a
// reverse proxy answers 502 to everything for a while. That is the server
// being away, as a refused connection is: the run waits and fails no row.
func TestGatewayErrorsAcrossRowsWaitForTheServer(t *testing.T) {
	r := newRig(t)
	var writes atomic.Int64
	var downUntil atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if until := downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>502 Bad Gateway</html>"))
			return true
		}
		if req.Method == http.MethodPut && writes.Add(1) == 20 {
			downUntil.Store(time.Now().Add(3 * time.Second).UnixNano())
		}
		return false
	}
	src := r.manifestOf("gw", 100)
	// Retries alone (4, from 1 ms) are over long before the proxy recovers.
	st, err := r.apply(src, filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["done"] != 100 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	r.wantAccounts("gw", 100)
	if downUntil.Load() == 0 {
		t.Fatal("the proxy never went away: the test tested nothing")
	}
}

// TestRowsDifferingOnlyInPasswordAreAConflict: two rows for one user that
// differ only in their password are not a harmless repeat: one password
// would be dropped. Validation reports it.
func TestRowsDifferingOnlyInPasswordAreAConflict(t *testing.T) {
	r := newRig(t)
	ch, err := Validate(r.manifest("m.csv", "user_id,password\na,first\na,second\nb,same\nb,same\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Total != 1 || !strings.Contains(ch.Problems[0].Error(), "m.csv:3:user_id: this row's user is also on row 2") {
		t.Fatalf("problems %v", ch.Problems)
	}
	if ch.DupOf[5] != 4 {
		t.Fatalf("identical rows are still a harmless repeat: %v", ch.DupOf)
	}
}

// TestJournalFailureSummaryCountsOnlyHeldRows: when the journal stops taking
// records (a full disk), the run's counts are what the journal holds, never
// rows a resume would not find finished.
func TestJournalFailureSummaryCountsOnlyHeldRows(t *testing.T) {
	dir := smallDisk(t, "12k")
	r := newRig(t)
	jp := filepath.Join(dir, "j")
	st, err := r.apply(r.manifestOf("held", 300), jp, nil)
	if err == nil {
		t.Fatal("the disk never filled")
	}
	held, herr := journal.LastRunOutcomes(jp)
	if herr != nil {
		t.Fatal(herr)
	}
	claimed, have := 0, 0
	for o, n := range st.Outcomes {
		claimed += n
		if n > held[o] {
			t.Errorf("the summary counts %d %s rows, the journal holds %d", n, o, held[o])
		}
	}
	for _, n := range held {
		have += n
	}
	if claimed != have || st.NotDone != 300-have {
		t.Fatalf("summary %+v, journal holds %v", st, held)
	}
}
