package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

type rig struct {
	t      *testing.T
	fake   *fakesynapse.Server
	client *synapse.Client
	dir    string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	fake := fakesynapse.New("hs.test")
	t.Cleanup(fake.Close)
	c, err := synapse.New(synapse.Config{Server: fake.URL, Token: fake.Token})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, fake: fake, client: c, dir: t.TempDir()}
}

func (r *rig) manifest(name, body string) Source {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return Source{Path: p, Parse: jobs.ParseOptions{File: p, ServerName: "hs.test"}}
}

func (r *rig) apply(src Source, journalPath string, mod func(*Config)) (*Stats, error) {
	r.t.Helper()
	ch, err := Validate(src)
	if err != nil {
		r.t.Fatal(err)
	}
	if ch.Total > 0 {
		r.t.Fatalf("manifest invalid: %v", ch.Problems)
	}
	cfg := Config{Source: src, Checked: ch, Journal: journalPath, Concurrency: 4, OnExists: jobs.ExistsSkip, BaseBackoff: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	return Apply(context.Background(), context.Background(), r.client, cfg)
}

func TestApplyCreatesThenWritesNothing(t *testing.T) {
	r := newRig(t)
	var b strings.Builder
	b.WriteString("user_id,displayname,password,emails,msisdns,external_ids,admin\n")
	for i := range 50 {
		fmt.Fprintf(&b, "u%d,User %d,pw-%d,u%d@example.org,4477009%05d,oidc:sub-%d,%t\n", i, i, i, i, i, i, i%10 == 0)
	}
	src := r.manifest("users.csv", b.String())
	st, err := r.apply(src, filepath.Join(r.dir, "j1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["done"] != 50 {
		t.Fatalf("outcomes %v, want 50 done", st.Outcomes)
	}
	u := r.fake.User("@u7:hs.test")
	if u == nil || u.Displayname != "User 7" || u.Password != "pw-7" || len(u.Threepids) != 2 || len(u.ExternalIDs) != 1 || u.Admin {
		t.Fatalf("user 7 = %+v", u)
	}
	if !r.fake.User("@u10:hs.test").Admin {
		t.Fatal("u10 should be admin")
	}
	writes := r.fake.Writes.Load()
	// A second run with a new journal: every row matches, nothing is written.
	st, err = r.apply(src, filepath.Join(r.dir, "j2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["unchanged"] != 50 || r.fake.Writes.Load() != writes {
		t.Fatalf("second run: outcomes %v, writes %d -> %d", st.Outcomes, writes, r.fake.Writes.Load())
	}
	// And the same journal: every row is skipped without a request.
	before := r.fake.Requests.Load()
	st, err = r.apply(src, filepath.Join(r.dir, "j1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Resumed != 50 || r.fake.Requests.Load() != before {
		t.Fatalf("resume: resumed %d, requests %d -> %d", st.Resumed, before, r.fake.Requests.Load())
	}
}

func TestApplyGuardsThreepidAndExternalID(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@bob:hs.test", Threepids: [][2]string{{"email", "shared@example.org"}}, ExternalIDs: [][2]string{{"oidc", "taken"}}})
	src := r.manifest("m.csv", "user_id,emails,external_ids\nalice,Shared@Example.org,\ncarol,,oidc:taken\ndave,d@example.org,oidc:free\n")
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(src, jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["failed"] != 2 || st.Outcomes["done"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	if r.fake.User("@alice:hs.test") != nil || r.fake.User("@carol:hs.test") != nil {
		t.Fatal("a guarded row created its user")
	}
	if b := r.fake.User("@bob:hs.test"); len(b.Threepids) != 1 {
		t.Fatalf("bob lost his email: %+v", b)
	}
	sum, err := journal.Summarize(jp)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Failed) != 2 || !strings.Contains(sum.Failed[0].Error, "belongs to @bob:hs.test") {
		t.Fatalf("failed rows: %+v", sum.Failed)
	}
}

func TestApplyMergesListsAndKeepsPassword(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@erin:hs.test", Password: "old", Threepids: [][2]string{{"email", "old@example.org"}},
		ExternalIDs: [][2]string{{"saml", "e1"}}})
	src := r.manifest("m.csv", "user_id,password,emails,external_ids\nerin,new,new@example.org,oidc:e2\n")
	if _, err := r.apply(src, filepath.Join(r.dir, "j"), nil); err != nil {
		t.Fatal(err)
	}
	u := r.fake.User("@erin:hs.test")
	if u.Password != "old" || u.PasswordSets != 0 {
		t.Fatalf("upsert changed an existing user's password: %+v", u)
	}
	if len(u.Threepids) != 2 || len(u.ExternalIDs) != 2 {
		t.Fatalf("lists not merged: %+v", u)
	}
	// --replace-lists replaces them.
	src.Parse.ReplaceLists = true
	if _, err := r.apply(src, filepath.Join(r.dir, "j2"), nil); err != nil {
		t.Fatal(err)
	}
	if u := r.fake.User("@erin:hs.test"); len(u.Threepids) != 1 || len(u.ExternalIDs) != 1 {
		t.Fatalf("lists not replaced: %+v", u)
	}
}

// TestApplyPausesEveryWorkerOn429: a 429 with retry_after_ms pauses every
// worker, not only the one that met it: no request goes out during the
// pause. It runs in a synctest bubble on an in-memory transport, so the
// clock is the bubble's and a loaded machine cannot stretch a request that
// was already on its way into the pause.
func TestApplyPausesEveryWorkerOn429(t *testing.T) {
	r := newRig(t)
	var b strings.Builder
	b.WriteString("user_id,displayname\n")
	for i := range 40 {
		fmt.Fprintf(&b, "p%d,P %d\n", i, i)
	}
	src := r.manifest("m.csv", b.String())
	ch, err := Validate(src)
	if err != nil || ch.Total > 0 {
		t.Fatalf("manifest: %v %v", err, ch.Problems)
	}
	synctest.Test(t, func(t *testing.T) {
		var once atomic.Bool
		var pausedAt atomic.Int64
		var during atomic.Int64
		r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
			// The bubble's clock, not a wait: each answer takes 5 ms of
			// it, so requests already on their way when the 429 is sent
			// land within 5 ms and one sent during the pause lands later.
			// With answers that take no time both would land at 0.
			time.Sleep(5 * time.Millisecond)
			if req.Method == http.MethodPut && once.CompareAndSwap(false, true) {
				pausedAt.Store(time.Now().UnixNano())
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(429)
				fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":2000}`)
				return true
			}
			// Requests already on their way when the 429 was sent arrive
			// within one answer's time; after that, none until it ends.
			if at := pausedAt.Load(); at != 0 {
				if since := time.Since(time.Unix(0, at)); since > 10*time.Millisecond && since < 2*time.Second {
					during.Add(1)
				}
			}
			return false
		}
		c, err := synapse.New(synapse.Config{Server: "http://hs.test", Token: r.fake.Token, Transport: fakesynapse.InMemory(r.fake.Config.Handler)})
		if err != nil {
			t.Fatal(err)
		}
		st, err := Apply(context.Background(), context.Background(), c, Config{Source: src, Checked: ch, Journal: filepath.Join(r.dir, "j"), Concurrency: 8})
		if err != nil {
			t.Fatal(err)
		}
		if st.Outcomes["done"] != 40 || pausedAt.Load() == 0 {
			t.Fatalf("outcomes %v (a 429 sent: %v)", st.Outcomes, pausedAt.Load() != 0)
		}
		if n := during.Load(); n > 0 {
			t.Fatalf("%d requests went out during the pause", n)
		}
	})
}

func TestApplyStopsWhenTokenRefused(t *testing.T) {
	r := newRig(t)
	var n atomic.Int64
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if n.Add(1) > 10 {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}`)
			return true
		}
		return false
	}
	var b strings.Builder
	b.WriteString("user_id\n")
	for i := range 100 {
		fmt.Fprintf(&b, "t%d\n", i)
	}
	st, err := r.apply(r.manifest("m.csv", b.String()), filepath.Join(r.dir, "j"), func(c *Config) { c.Concurrency = 2 })
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
	if st.Outcomes["failed"] != 0 || st.NotDone == 0 {
		t.Fatalf("a refused token must leave rows not done, not failed: %+v", st)
	}
	// A new token: the same command finishes the job.
	r.fake.Fault = nil
	r.fake.Token = "new-token"
	c, err := synapse.New(synapse.Config{Server: r.fake.URL, Token: "new-token"})
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	st, err = r.apply(r.manifest("m.csv", b.String()), filepath.Join(r.dir, "j"), nil)
	if err != nil || st.Resumed+st.Outcomes["done"] != 100 {
		t.Fatalf("resume with a new token: %v %+v", err, st)
	}
}

func TestApplyRetries5xxThenFailsRowWithStatus(t *testing.T) {
	r := newRig(t)
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "bad") {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"errcode":"M_INVALID_USERNAME","error":"nope"}`)
			return true
		}
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "flaky") && r.fake.Writes.Add(1) < 3 {
			w.WriteHeader(503)
			return true
		}
		return false
	}
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(r.manifest("m.csv", "user_id\nflaky\nbad\n"), jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcomes["done"] != 1 || st.Outcomes["failed"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	sum, _ := journal.Summarize(jp)
	if f := sum.Failed[0]; f.Status != 400 || f.Errcode != "M_INVALID_USERNAME" || f.UserID != "@bad:hs.test" {
		t.Fatalf("failed row %+v", f)
	}
}

func TestApplyUpdatePasswordNotResentAfterLostAnswer(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@pat:hs.test"})
	var cut atomic.Bool
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPut && cut.CompareAndSwap(false, true) {
			// Apply the write, then lose the answer, as a proxy timing out would.
			rec := &discard{h: http.Header{}}
			r.fake.Config.Handler.ServeHTTP(rec, req)
			w.WriteHeader(504)
			return true
		}
		return false
	}
	jp := filepath.Join(r.dir, "j")
	st, err := r.apply(r.manifest("m.csv", "user_id,action,password,displayname\npat,update,s3cret,Pat\n"), jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The lost answer is settled by a login with the new password.
	if st.Outcomes["done"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	if u := r.fake.User("@pat:hs.test"); u.PasswordSets != 1 || u.Displayname != "Pat" || u.Sessions != 0 {
		t.Fatalf("password set %d times, user %+v", u.PasswordSets, u)
	}
	b, _ := os.ReadFile(jp)
	if strings.Contains(string(b), "s3cret") {
		t.Fatal("the journal holds the password")
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func TestValidateFindsConflictsBetweenRows(t *testing.T) {
	r := newRig(t)
	src := r.manifest("m.csv", "user_id,displayname,emails\na,A,x@example.org\na,A,x@example.org\na,B,\nb,,X@example.org\n")
	ch, err := Validate(src)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range ch.Problems {
		msgs = append(msgs, p.Error())
	}
	got := strings.Join(msgs, "\n")
	if ch.Total != 2 || !strings.Contains(got, "m.csv:4:user_id: this row's user is also on row 2") || !strings.Contains(got, "m.csv:5:emails: email: the same value is given to another user on row 2") {
		t.Fatalf("problems:\n%s", got)
	}
	if ch.DupOf[3] != 2 {
		t.Fatalf("row 3 should be a duplicate of row 2: %v", ch.DupOf)
	}
}

func TestSoftStopFinishesInFlightThenResumes(t *testing.T) {
	r := newRig(t)
	var b strings.Builder
	b.WriteString("user_id,displayname\n")
	for i := range 200 {
		fmt.Fprintf(&b, "s%d,S %d\n", i, i)
	}
	src := r.manifest("m.csv", b.String())
	jp := filepath.Join(r.dir, "j")
	soft, stop := context.WithCancel(context.Background())
	ch, _ := Validate(src)
	var n atomic.Int64
	cfg := Config{Source: src, Checked: ch, Journal: jp, Concurrency: 4, OnExists: jobs.ExistsSkip,
		OnRecord: func(journal.Record) {
			if n.Add(1) == 50 {
				stop() // the first Ctrl-C
			}
		}}
	st, err := Apply(soft, context.Background(), r.client, cfg)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
	done := st.Outcomes["done"]
	if done < 50 || done > 60 || st.NotDone != 200-done {
		t.Fatalf("stopped run: %+v", st)
	}
	// Nothing in flight was abandoned: every written user is journaled.
	if w := r.fake.Writes.Load(); w != int64(done) {
		t.Fatalf("%d writes but %d rows journaled done", w, done)
	}
	st, err = r.apply(src, jp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Resumed != done || st.Outcomes["done"] != 200-done || r.fake.Writes.Load() != 200 {
		t.Fatalf("resume: %+v, writes %d", st, r.fake.Writes.Load())
	}
}

// TestShardsCoverEveryRowOnce: shards 0..N-1 of a manifest, in any format
// or row order, run every row exactly once between them.
func TestShardsCoverEveryRowOnce(t *testing.T) {
	r := newRig(t)
	var csvB, jsonB strings.Builder
	csvB.WriteString("user_id,displayname\n")
	const rows = 500
	for i := range rows {
		fmt.Fprintf(&csvB, "sh%d,S %d\n", i, i)
	}
	for i := rows - 1; i >= 0; i-- { // the same rows, reversed, in JSONL
		fmt.Fprintf(&jsonB, `{"user_id":"@sh%d:hs.test","displayname":"S %d"}`+"\n", i, i)
	}
	csvSrc := r.manifest("m.csv", csvB.String())
	jsonSrc := r.manifest("m.jsonl", jsonB.String())
	const n = 4
	total := 0
	for k := range n {
		for _, src := range []Source{csvSrc, jsonSrc} {
			src.Shard, src.Shards = k, n
			ch, err := Validate(src)
			if err != nil || ch.Total > 0 {
				t.Fatal(err, ch.Problems)
			}
			if ch.AllRows != rows {
				t.Fatalf("shard %d of %s sees %d rows of %d", k, src.Path, ch.AllRows, rows)
			}
			before := r.fake.Writes.Load()
			st, err := Apply(context.Background(), context.Background(), r.client, Config{Source: src, Checked: ch,
				Journal: filepath.Join(r.dir, fmt.Sprintf("j-%d-%s", k, filepath.Ext(src.Path))), Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			if src.Path == csvSrc.Path {
				total += st.Outcomes["done"]
				if st.Rows != ch.Rows || st.Outcomes["done"] != ch.Rows {
					t.Fatalf("shard %d: %+v, validation said %d rows", k, st, ch.Rows)
				}
			} else if st.Outcomes["unchanged"] != ch.Rows || r.fake.Writes.Load() != before {
				// The JSONL shard k holds exactly the users CSV shard k wrote.
				t.Fatalf("JSONL shard %d is not CSV shard %d: %+v", k, k, st)
			}
		}
	}
	if total != rows || r.fake.Writes.Load() != rows {
		t.Fatalf("shards wrote %d rows (%d writes), want each of %d once", total, r.fake.Writes.Load(), rows)
	}
}

// TestResumedPasswordWriteIsNotResent: a run killed after it began an
// update's password write leaves a begin record and no result. The resume
// cannot tell whether the password landed, so it does not send it again
// (a second write logs the user out again) and says so.
func TestResumedPasswordWriteIsNotResent(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@pat:hs.test"})
	src, ch, jp := r.killedAfterBegin(t, "user_id,action,password,displayname\npat,update,s3cret,Pat\n")
	st, err := Apply(context.Background(), context.Background(), r.client, Config{Source: src, Checked: ch, Journal: jp, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	u := r.fake.User("@pat:hs.test")
	if st.Outcomes["uncertain"] != 1 || u.PasswordSets != 0 || u.Displayname != "Pat" {
		t.Fatalf("outcomes %v, password sets %d, user %+v", st.Outcomes, u.PasswordSets, u)
	}
}

// TestKilledRunsCreateLandingLateIsReadBackNotAConflict: a run killed
// while its create was on its way leaves a begin record; the resume reads
// no account, and its own create is refused with M_USER_IN_USE because the
// killed run's create landed in between. The row is planned again, finds
// the account and ends done, instead of failing as "the name is taken".
func TestKilledRunsCreateLandingLateIsReadBackNotAConflict(t *testing.T) {
	r := newRig(t)
	src, ch, jp := r.killedAfterBegin(t, "user_id,action,displayname\npat,create,Pat\n")
	var landed atomic.Bool
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != http.MethodPut || !strings.HasSuffix(req.URL.Path, "/@pat:hs.test") || !landed.CompareAndSwap(false, true) {
			return false
		}
		// The killed run's create lands now, and this one is refused
		// as Synapse refuses a second registration of one name.
		r.fake.Put(fakesynapse.User{Name: "@pat:hs.test", Displayname: "Pat"})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`))
		return true
	}
	st, err := Apply(context.Background(), context.Background(), r.client, Config{Source: src, Checked: ch, Journal: jp, Concurrency: 1, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !landed.Load() || st.Outcomes["done"] != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("outcomes %v (the late create landed: %v)", st.Outcomes, landed.Load())
	}
	if u := r.fake.User("@pat:hs.test"); u == nil || u.Displayname != "Pat" {
		t.Fatalf("account %+v", u)
	}
}

// killedAfterBegin writes a one-row manifest and the journal a run killed
// just after it began the row's write leaves: a begin record, no result.
func (r *rig) killedAfterBegin(t *testing.T, csv string) (Source, *Checked, string) {
	t.Helper()
	src := r.manifest("m.csv", csv)
	ch, _ := Validate(src)
	rd, _ := formats.Open(src.Path, formats.Options{})
	row, _ := rd.Next()
	rd.Close()
	job, _ := jobs.Parse(row, src.Parse)
	jp := filepath.Join(r.dir, "j")
	w, err := journal.Create(jp, journal.Header{})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(journal.Record{Type: "begin", Row: 2, Key: job.Key, UserID: job.UserID})
	w.Close()
	return src, ch, jp
}

// TestKilledRunsGeneratedPasswordIsTheOneInEffectAfterTheRace: the killed
// run generated the row's password, saved it and sent its create, which
// lands while the resume creates too. The resume sends the saved password,
// not a new one, so after the race the file's last line for the user is
// the password the account has.
func TestKilledRunsGeneratedPasswordIsTheOneInEffectAfterTheRace(t *testing.T) {
	r := newRig(t)
	src, ch, jp := r.killedAfterBegin(t, "user_id,action,password\npat,create,generate\n")
	pwPath := filepath.Join(r.dir, "passwords.csv")
	killed, err := jobs.OpenPasswordFile(pwPath, false)
	if err != nil {
		t.Fatal(err)
	}
	first, err := killed.Generate("@pat:hs.test")
	if err != nil {
		t.Fatal(err)
	}
	killed.Close()
	var landed atomic.Bool
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != http.MethodPut || !strings.HasSuffix(req.URL.Path, "/@pat:hs.test") || !landed.CompareAndSwap(false, true) {
			return false
		}
		r.fake.Put(fakesynapse.User{Name: "@pat:hs.test", Password: first}) // the killed run's create
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`))
		return true
	}
	pf, err := jobs.OpenPasswordFile(pwPath, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Apply(context.Background(), context.Background(), r.client, Config{Source: src, Checked: ch, Journal: jp, Concurrency: 1, BaseBackoff: time.Millisecond, Passwords: pf})
	pf.Close()
	if err != nil || !landed.Load() || st.Outcomes["done"] != 1 {
		t.Fatalf("%v: outcomes %v (the late create landed: %v)", err, st.Outcomes, landed.Load())
	}
	again, err := jobs.OpenPasswordFile(pwPath, true)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	last, err := again.Last("@pat:hs.test")
	if u := r.fake.User("@pat:hs.test"); err != nil || u.Password != first || last != first {
		t.Fatalf("the account's password %q, the file's last %q (%v); want both the killed run's %q", u.Password, last, err, first)
	}
}
