package mas

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// lostAnswer is one way the answer to a MAS write goes missing.
type lostAnswer string

const (
	lostResetBefore lostAnswer = "reset before forwarding" // MAS never saw it
	lostAfter504    lostAnswer = "504 after forwarding"    // MAS did it; a proxy timed out
	lostResetAfter  lostAnswer = "reset after forwarding"  // MAS did it; the connection dropped
)

// masFaultProxy stands in front of the MAS stand-in, as a reverse proxy
// stands in front of a deployed MAS, and loses the answer of a share of the
// admin API's writes (any method but GET under /api/admin/v1/). Discovery,
// the token endpoint and reads pass untouched. Give synbatch its URL as
// SYNBATCH_MAS_URL (the admin API's base) to put it in the way.
type masFaultProxy struct {
	*httptest.Server
	rp *httputil.ReverseProxy

	mu        sync.Mutex
	rng       *rand.Rand
	rate      float64
	kinds     []lostAnswer
	lost      map[lostAnswer]int
	forwarded map[string]int // "POST /api/admin/v1/users" → writes that reached the stand-in
}

// newMASFaultProxy loses the answer of rate (0..1) of the writes, each in one
// of kinds (all three when none is given), drawn with a logged seed.
func (r *rig) newMASFaultProxy(t *testing.T, rate float64, kinds ...lostAnswer) *masFaultProxy {
	t.Helper()
	target, err := url.Parse(r.masURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(kinds) == 0 {
		kinds = []lostAnswer{lostResetBefore, lostAfter504, lostResetAfter}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("MAS fault proxy: seed %d, %.0f%% of admin API writes lose their answer", seed, rate*100)
	p := &masFaultProxy{
		rp:   httputil.NewSingleHostReverseProxy(target),
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rate: rate, kinds: kinds,
		lost: map[lostAnswer]int{}, forwarded: map[string]int{},
	}
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

// URL is the proxy's base, with the trailing slash an issuer has.
func (p *masFaultProxy) URL() string { return p.Server.URL + "/" }

// Lost says how many answers were lost, by kind.
func (p *masFaultProxy) Lost() map[lostAnswer]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[lostAnswer]int{}
	for k, v := range p.lost {
		out[k] = v
	}
	return out
}

// Forwarded says how many writes of "METHOD path" reached the stand-in,
// with the ids in paths (ULIDs) replaced by {id}.
func (p *masFaultProxy) Forwarded() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.forwarded {
		out[k] = v
	}
	return out
}

func pathPattern(path string) string {
	parts := strings.Split(path, "/")
	for i, s := range parts {
		if len(s) == 26 && strings.ToUpper(s) == s {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func (p *masFaultProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	write := req.Method != http.MethodGet && strings.HasPrefix(req.URL.Path, "/api/admin/v1/")
	if !write {
		p.rp.ServeHTTP(w, req)
		return
	}
	p.mu.Lock()
	var kind lostAnswer
	if p.rng.Float64() < p.rate {
		kind = p.kinds[p.rng.IntN(len(p.kinds))]
		p.lost[kind]++
	}
	if kind != lostResetBefore {
		p.forwarded[req.Method+" "+pathPattern(req.URL.Path)]++
	}
	p.mu.Unlock()

	switch kind {
	case "":
		p.rp.ServeHTTP(w, req)
	case lostResetBefore:
		reset(w)
	case lostAfter504:
		p.rp.ServeHTTP(httptest.NewRecorder(), req)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusGatewayTimeout)
		w.Write([]byte("<html><body><h1>504 Gateway Time-out</h1></body></html>\n"))
	case lostResetAfter:
		p.rp.ServeHTTP(httptest.NewRecorder(), req)
		reset(w)
	}
}

// reset drops the client's connection with a TCP reset, no answer sent.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// TestMASFaultProxyLosesAnswersOfWritesThatLanded checks the proxy itself:
// a write whose answer is lost after forwarding is done in MAS and Synapse,
// one reset before forwarding is not, and reads pass.
func TestMASFaultProxyLosesAnswersOfWritesThatLanded(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	tok, err := r.masTokenErr()
	if err != nil {
		t.Fatal(err)
	}
	create := func(p *masFaultProxy, name string) (int, error) {
		code, _, err := r.do("POST", p.URL()+"api/admin/v1/users", tok, map[string]any{"username": name})
		return code, err
	}
	after := r.newMASFaultProxy(t, 1, lostAfter504)
	landed := uniq(t)
	if code, err := create(after, landed); err != nil || code != 504 {
		t.Fatalf("through a 504-after proxy: HTTP %d, %v; want 504", code, err)
	}
	if r.masUser(t, landed) == nil || r.synapseUser(t, r.id(landed)) == nil {
		t.Fatalf("a create whose answer was lost after forwarding is not in MAS and Synapse")
	}
	if got := after.Forwarded()["POST /api/admin/v1/users"]; got != 1 {
		t.Fatalf("forwarded creates: %d, want 1", got)
	}
	before := r.newMASFaultProxy(t, 1, lostResetBefore)
	never := uniq(t)
	if _, err := create(before, never); err == nil {
		t.Fatal("a reset before forwarding gave an answer")
	}
	if r.masUser(t, never) != nil {
		t.Fatal("a create reset before forwarding reached MAS")
	}
	code, _, err := r.do("GET", before.URL()+"api/admin/v1/users/by-username/"+landed, tok, nil)
	if err != nil || code != 200 {
		t.Fatalf("a read through the proxy: HTTP %d, %v", code, err)
	}
}
