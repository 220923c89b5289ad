package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/synbatch/synbatch/internal/masstandin"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

const testProvider = "01JPR0V1DER0000000000000KC"

// lossy loses, once each, the answer of the first write to MAS's admin API
// whose path ends with one of once, after the stand-in has done it (a
// proxy's 504), as a gateway timing out does.
type lossy struct {
	next http.Handler
	mu   sync.Mutex
	once []string
	lost int
	// before, when set, runs before each request reaches the stand-in.
	before func(r *http.Request)
}

func (l *lossy) loses(r *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Method == http.MethodGet || !strings.HasPrefix(r.URL.Path, "/api/admin/v1/") {
		return false
	}
	for i, suffix := range l.once {
		if strings.HasSuffix(r.URL.Path, suffix) {
			l.once = append(l.once[:i], l.once[i+1:]...)
			l.lost++
			return true
		}
	}
	return false
}

func (l *lossy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.before != nil {
		l.before(r)
	}
	if l.loses(r) {
		l.next.ServeHTTP(httptest.NewRecorder(), r) // done, answer dropped
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	}
	l.next.ServeHTTP(w, r)
}

// masEnv gives a row's job an Env whose MAS is the stand-in (in process,
// provisioning nothing) behind a lossy proxy, and whose Synapse is a
// scripted server that knows no user (not provisioned yet).
func masEnv(t *testing.T, kv ...string) (*Job, Env, *mas.Client, *lossy) {
	t.Helper()
	_, j, env := scripted(t, nil, kv...)
	l := &lossy{}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	st, err := masstandin.New(masstandin.Config{Issuer: srv.URL + "/", ServerName: "hs", SharedSecret: "shared",
		AdminClients: map[string]string{"01JCL1ENT000000000000000AD": "client-secret"},
		Providers:    []masstandin.Provider{{ID: testProvider, HumanName: "Keycloak", Issuer: "https://kc.invalid/"}}})
	if err != nil {
		t.Fatal(err)
	}
	l.next = st.Handler()
	m, err := mas.New(mas.Config{Issuer: srv.URL + "/", ClientID: "01JCL1ENT000000000000000AD", ClientSecret: "client-secret"})
	if err != nil {
		t.Fatal(err)
	}
	env.MAS = m
	return j, env, m, l
}

// msisdns on a MAS server are refused at plan, with the reason.
func TestMASPlanRefusesMsisdns(t *testing.T) {
	j, env, m, _ := masEnv(t, "action", "upsert", "user_id", "a", "msisdns", "447700900123")
	_, err := j.Plan(context.Background(), env, &State{})
	if err == nil || !IsRowError(err) || !strings.Contains(err.Error(), "MAS keeps no phone numbers") {
		t.Fatalf("plan: %v, want a row error naming MAS's lack of phone numbers", err)
	}
	if m.Writes() != 0 {
		t.Errorf("%d writes to MAS", m.Writes())
	}
}

// An address another MAS user holds is a conflict, and stays theirs.
func TestMASEmailOfAnotherUserIsNotMoved(t *testing.T) {
	j, env, m, _ := masEnv(t, "action", "upsert", "user_id", "a", "emails", "b@x.org")
	ctx := context.Background()
	b, err := m.CreateUser(ctx, "b", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddEmail(ctx, b.ID, "b@x.org"); err != nil {
		t.Fatal(err)
	}
	p, err := j.PlanRow(ctx, env)
	if err != nil || p.Kind != KindConflict || !strings.Contains(p.Reason, "not moved") {
		t.Fatalf("plan %+v %v, want a conflict", p, err)
	}
	if u, _ := m.UserByUsername(ctx, "a"); u != nil {
		t.Error("the plan created a")
	}
	if e, _ := m.EmailByAddress(ctx, "b@x.org"); e == nil || e.UserID != b.ID {
		t.Errorf("b@x.org now %+v", e)
	}
}

// Every kind of MAS write of a new user's row losing its answer once (done,
// then a 504): each retry plans again from MAS's state, so the row ends
// with one user, its password, its email, its link and its admin flag,
// nothing twice and no conflict; a further plan is unchanged.
func TestMASLostAnswersAreSettledByReadingMASBack(t *testing.T) {
	j, env, m, l := masEnv(t, "action", "upsert", "user_id", "a", "password", "Long-enough-pw-1",
		"emails", "a@x.org", "external_ids", "Keycloak:sub|1", "admin", "true")
	ctx := context.Background()
	l.once = []string{"/users", "/set-password", "/user-emails", "/upstream-oauth-links", "/set-admin"}
	st := &State{}
	var res Result
	var err error
	for try := 1; try <= 10; try++ {
		if res, err = j.Run(ctx, env, st); err == nil {
			break
		}
		if IsRowError(err) {
			t.Fatalf("try %d: the row failed: %v", try, err)
		}
	}
	if err != nil || res.Outcome != journal.Done {
		t.Fatalf("after retries: %v %+v", err, res)
	}
	u, _ := m.UserByUsername(ctx, "a")
	if u == nil || !u.Admin {
		t.Fatalf("MAS user a: %+v", u)
	}
	emails, _ := m.Emails(ctx, u.ID)
	links, _ := m.Links(ctx, u.ID)
	if len(emails) != 1 || emails[0].Email != "a@x.org" || len(links) != 1 || links[0].Subject != "sub|1" || links[0].ProviderID != testProvider {
		t.Fatalf("emails %+v links %+v", emails, links)
	}
	if l.lost != 5 {
		t.Errorf("%d answers lost, want 5", l.lost)
	}
	p, err := j.Plan(ctx, env, &State{})
	if err != nil || p.Kind != KindUnchanged {
		t.Fatalf("plan after: %v %+v", err, p)
	}
}

// A deactivate row with redact on a MAS server redacts through Synapse
// first (its task polled to the end), then deactivates in MAS with erase:
// MAS's deactivation has Synapse part the user from its rooms.
func TestMASDeactivateWithRedactRedactsInSynapseBeforeMASDeactivates(t *testing.T) {
	j, env, m, _ := masEnv(t, "action", "deactivate", "user_id", "u", "redact", "true", "erase", "true")
	ctx := context.Background()
	u, err := m.CreateUser(ctx, "u", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := newRedactServer("complete")
	hs := httptest.NewServer(srv.handler())
	t.Cleanup(hs.Close)
	env.Client, _ = synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	env.Task = func(string) error {
		if mu, _ := m.UserByUsername(ctx, "u"); mu == nil || mu.Deactivated() {
			t.Error("MAS deactivated the user before the redaction started")
		}
		return nil
	}
	res, err := j.Run(ctx, env, &State{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != journal.Done || strings.Join(srv.writes, "|") != "POST /_synapse/admin/v1/user/@u:hs/redact" {
		t.Fatalf("result %+v, Synapse writes %v: want one redaction", res, srv.writes)
	}
	if srv.redactions["$a1"] != 1 || srv.redactions["$a2"] != 1 {
		t.Errorf("redactions %v, want each event once", srv.redactions)
	}
	if mu, _ := m.UserByUsername(ctx, u.Username); mu == nil || !mu.Deactivated() {
		t.Errorf("MAS user %+v, want it deactivated", mu)
	}
}

// A deactivate row with media=delete on a MAS server deletes the user's
// uploads through Synapse before MAS deactivates the account (the column
// was ignored on MAS).
func TestMASDeactivateWithMediaDeleteDeletesUploadsFirst(t *testing.T) {
	j, env, m, _ := masEnv(t, "action", "deactivate", "user_id", "u", "media", "delete")
	ctx := context.Background()
	if _, err := m.CreateUser(ctx, "u", nil, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	files, deletes := 2, 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v1/users/{id}/media", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var media []map[string]any
		for i := range files {
			media = append(media, map[string]any{"media_id": fmt.Sprint("f", i), "media_length": 10})
		}
		json.NewEncoder(w).Encode(map[string]any{"media": media, "total": files})
	})
	mux.HandleFunc("DELETE /_synapse/admin/v1/users/{id}/media", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if u, _ := m.UserByUsername(ctx, "u"); u == nil || u.Deactivated() {
			t.Error("MAS deactivated the user before the uploads were deleted")
		}
		deletes++
		json.NewEncoder(w).Encode(map[string]any{"deleted_media": make([]string, files), "total": files})
		files = 0
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	env.Client, _ = synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	res, err := j.Run(ctx, env, &State{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Outcome != journal.Done || deletes == 0 || files != 0 {
		t.Fatalf("result %+v, %d deletions, %d files left: want the uploads deleted", res, deletes, files)
	}
	if u, _ := m.UserByUsername(ctx, "u"); u == nil || !u.Deactivated() {
		t.Errorf("MAS user %+v, want it deactivated", u)
	}
}

// A registration-token row's revoked column on MAS: true revokes the token
// (after bringing it to the row's usage limit), false brings a revoked one
// back, each planned as a revoked change and, once done, unchanged. A
// revoke or unrevoke whose answer is lost (done, then a 504) is settled by
// reading the token back: the row is done, not failed by MAS's 400 for a
// token already in that state. A token MAS lacks cannot be revoked, one
// revoked without the column is a row error that names it, and on a
// plain Synapse revoked=true is a row error naming the column.
func TestMASRegistrationTokenRowRevokesAndUnrevokesOnce(t *testing.T) {
	ctx := context.Background()
	job := func(kv ...string) *Job {
		j, probs := Parse(row(append([]string{"action", "registration-token"}, kv...)...), ParseOptions{File: "m.csv", ServerName: "hs"})
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return j
	}
	j, env, m, l := masEnv(t, "action", "registration-token", "token", "tok-1", "uses_allowed", "7", "revoked", "true")
	five := int64(5)
	if err := m.CreateRegToken(ctx, "tok-1", &five, nil); err != nil {
		t.Fatal(err)
	}
	p, err := j.Plan(ctx, env, &State{})
	if err != nil || len(p.Changes) != 2 || p.Changes[0].Field != "token" || p.Changes[1] != (FieldChange{Field: "revoked", Old: "false", New: "true"}) {
		t.Fatalf("plan: %v %+v, want the usage limit, then revoked false → true", err, p)
	}
	l.once = []string{"/revoke"}
	if res, err := j.Run(ctx, env, &State{}); err != nil || res.Outcome != journal.Done {
		t.Fatalf("revoke with its answer lost: %v %+v", err, res)
	}
	cur, err := m.RegTokenByValue(ctx, "tok-1")
	if err != nil || cur == nil || cur.RevokedAt == nil || cur.UsageLimit == nil || *cur.UsageLimit != 7 || l.lost != 1 {
		t.Fatalf("MAS after the revoke: %+v %v, %d answers lost", cur, err, l.lost)
	}
	if p, err := j.Plan(ctx, env, &State{}); err != nil || p.Kind != KindUnchanged {
		t.Fatalf("plan of the revoked token: %v %+v, want unchanged", err, p)
	}

	// The same MAS, a row that brings the token back.
	back := job("token", "tok-1", "uses_allowed", "7", "revoked", "false")
	l.once = []string{"/unrevoke"}
	if res, err := back.Run(ctx, env, &State{}); err != nil || res.Outcome != journal.Done {
		t.Fatalf("unrevoke with its answer lost: %v %+v", err, res)
	}
	if cur, _ := m.RegTokenByValue(ctx, "tok-1"); cur == nil || cur.RevokedAt != nil || l.lost != 2 {
		t.Fatalf("MAS after the unrevoke: %+v, %d answers lost", cur, l.lost)
	}
	if p, err := back.Plan(ctx, env, &State{}); err != nil || p.Kind != KindUnchanged {
		t.Fatalf("plan of the token back in use: %v %+v, want unchanged", err, p)
	}

	// A token revoked, and a row that says nothing of it.
	if _, err := j.Run(ctx, env, &State{}); err != nil {
		t.Fatal(err)
	}
	silent := job("token", "tok-1", "uses_allowed", "7")
	if _, err := silent.Plan(ctx, env, &State{}); err == nil || !IsRowError(err) || !strings.Contains(err.Error(), "revoked=false") {
		t.Errorf("a revoked token, revoked empty: %v, want a row error naming revoked=false", err)
	}
	writes := m.Writes()
	gone := job("token", "tok-2", "revoked", "true")
	if _, err := gone.Run(ctx, env, &State{}); err == nil || !IsRowError(err) || !strings.Contains(err.Error(), "nothing to revoke") {
		t.Errorf("revoking a token MAS lacks: %v, want a row error", err)
	}
	if m.Writes() != writes {
		t.Errorf("revoking a token MAS lacks wrote %d times to MAS", m.Writes()-writes)
	}

	_, syn, synEnv := scripted(t, nil, "action", "registration-token", "token", "tok-1", "revoked", "true")
	if _, err := syn.Plan(ctx, synEnv, &State{}); err == nil || !IsRowError(err) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked=true on a plain Synapse: %v, want a row error naming the column", err)
	}
	if _, probs := Parse(row("action", "registration-token", "revoked", "true"), ParseOptions{File: "m.csv", ServerName: "hs"}); len(probs) != 1 || probs[0].Column != "revoked" {
		t.Errorf("revoked=true with a generated token: problems %v, want one on revoked", probs)
	}
}

// A replace keeps the links the row names and removes only the others,
// whether the row names the provider by id or by its human name.
func TestMASLinksToRemoveAreTheOnesTheRowDoesNotName(t *testing.T) {
	t.Parallel()
	human := "Keycloak"
	ps := []mas.Provider{{ID: testProvider, HumanName: &human}, {ID: "01JPR0V1DER0000000000000GG"}}
	cur := []mas.Link{
		{ID: "l1", ProviderID: testProvider, Subject: "sub|1"},
		{ID: "l2", ProviderID: testProvider, Subject: "sub|2"},
		{ID: "l3", ProviderID: "01JPR0V1DER0000000000000GG", Subject: "sub|1"},
	}
	for _, c := range []struct {
		ids  []synapse.ExternalID
		want []string
	}{
		{[]synapse.ExternalID{{AuthProvider: "Keycloak", ExternalID: "sub|1"}}, []string{"l2", "l3"}},
		{[]synapse.ExternalID{{AuthProvider: testProvider, ExternalID: "sub|2"}, {AuthProvider: "01JPR0V1DER0000000000000GG", ExternalID: "sub|1"}}, []string{"l1"}},
		{nil, []string{"l1", "l2", "l3"}},
	} {
		var got []string
		for _, l := range masLinksToRemove(ps, cur, c.ids) {
			got = append(got, l.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("row names %v: removes %v, want %v", c.ids, got, c.want)
		}
	}
}

// A new MAS account's user type is set through Synapse, as a change the
// plan shows; a row without one plans no user_type write.
func TestMASCreatePlansTheUserTypeThroughSynapse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kv   []string
		want bool
	}{
		{[]string{"action", "create", "user_id", "a", "user_type", "bot"}, true},
		{[]string{"action", "create", "user_id", "a"}, false},
	} {
		j, env, _, _ := masEnv(t, c.kv...)
		p, err := j.Plan(context.Background(), env, &State{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(p.Changes, func(fc FieldChange) bool { return fc.Field == "user_type" })
		if got := i >= 0; got != c.want {
			t.Fatalf("%v: user_type planned %v, want %v (changes %+v)", c.kv, got, c.want, p.Changes)
		}
		if c.want && (p.Changes[i].New != "bot" || p.Changes[i].Old != "") {
			t.Errorf("user_type change %+v, want none to bot", p.Changes[i])
		}
	}
}

// TestMASCreateOfABegunRowRacingItsEarlierCreateIsPlannedAgain: a row whose
// create began before (a killed run's, still landing) plans a create, and
// MAS answers its POST 409 because the earlier create landed in between.
// The attempt ends in an error the row retries (not a conflict), and the
// next plan finds the account and finishes the row.
func TestMASCreateOfABegunRowRacingItsEarlierCreateIsPlannedAgain(t *testing.T) {
	j, env, m, l := masEnv(t, "action", "create", "user_id", "a", "emails", "a@x.org")
	ctx := context.Background()
	l.before = landsFirst(t, m, "a")
	st := &State{Begun: true}
	_, err := j.Run(ctx, env, st)
	var again *synapse.Again
	if !errors.As(err, &again) || !synapse.IsRetryable(err) {
		t.Fatalf("the racing attempt: %v, want synapse.Again (the row plans again)", err)
	}
	res, err := j.Run(ctx, env, st)
	if err != nil || res.Outcome != journal.Done {
		t.Fatalf("planned again: %v %+v", err, res)
	}
	u, _ := m.UserByUsername(ctx, "a")
	if u == nil {
		t.Fatal("no user a")
	}
	if e, _ := m.EmailByAddress(ctx, "a@x.org"); e == nil || e.UserID != u.ID {
		t.Fatalf("a@x.org: %+v", e)
	}
	// A row that never began keeps the conflict: the name is another's.
	j2, env2, m2, l2 := masEnv(t, "action", "create", "user_id", "b")
	l2.before = landsFirst(t, m2, "b")
	if _, err := j2.Run(ctx, env2, &State{}); !IsRowError(err) || synapse.IsRetryable(err) {
		t.Fatalf("a row that never began: %v, want the conflict", err)
	}
}

// landsFirst is a lossy.before that, at the first create of a user, creates
// username first through m, as an earlier create still landing would (its
// own request passes through, once the hook is taken).
func landsFirst(t *testing.T, m *mas.Client, username string) func(r *http.Request) {
	var taken atomic.Bool
	return func(r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/admin/v1/users" || !taken.CompareAndSwap(false, true) {
			return
		}
		if _, err := m.CreateUser(context.WithoutCancel(r.Context()), username, nil, nil); err != nil {
			t.Errorf("the earlier create of %s: %v", username, err)
		}
	}
}

// TestRacedOnlyForAnAccountThatExistsOnceABegunRow: only "the account
// exists" (Synapse's M_USER_IN_USE, MAS's 409) of a row that had begun is
// planned again, and only once; a name reserved by an application
// service, a row that had not begun, and a second refusal stay conflicts.
func TestRacedOnlyForAnAccountThatExistsOnceABegunRow(t *testing.T) {
	refusal := func(status int, errcode string) error {
		return &RowError{Msg: "taken", Conflict: true, cause: &synapse.Error{Status: status, Errcode: errcode}}
	}
	isAgain := func(err error) bool {
		var a *synapse.Again
		return errors.As(err, &a)
	}
	for _, c := range []struct {
		name  string
		begun bool
		err   error
		again bool
	}{
		{"Synapse: the account exists", true, refusal(400, "M_USER_IN_USE"), true},
		{"MAS: the account exists", true, refusal(409, ""), true},
		{"an application service's name", true, refusal(400, "M_EXCLUSIVE"), false},
		{"a row that had not begun", false, refusal(400, "M_USER_IN_USE"), false},
	} {
		st := &State{}
		if got := isAgain(raced(st, c.begun, c.err)); got != c.again {
			t.Errorf("%s: planned again %v, want %v", c.name, got, c.again)
		}
		if c.again && isAgain(raced(st, c.begun, c.err)) {
			t.Errorf("%s: planned again a second time", c.name)
		}
	}
}
