package integration

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fault is one way a write can go wrong between synbatch and Synapse.
type fault string

const (
	f429ms      fault = "429 retry_after_ms"
	f429secs    fault = "429 Retry-After seconds"
	f429date    fault = "429 Retry-After date"
	f429bare    fault = "429 without a hint"
	f503        fault = "503 before forwarding"
	f504after   fault = "504 after forwarding"
	fResetFirst fault = "reset before forwarding"
	fResetAfter fault = "reset after forwarding"
)

// allFaults is every kind, drawn with equal weight.
var allFaults = []fault{f429ms, f429secs, f429date, f429bare, f503, f504after, fResetFirst, fResetAfter}

// faultProxy is a reverse proxy in front of the real Synapse, as nginx or
// traefik stand in front of deployed ones. Each write (any method but GET)
// meets one of its faults with probability rate; with Synapse stopped behind
// it, it answers 502 as a real proxy does.
type faultProxy struct {
	*httptest.Server
	rp *httputil.ReverseProxy

	mu     sync.Mutex
	rng    *rand.Rand
	rate   float64
	kinds  []fault
	counts map[fault]int
	writes int
	sent   []string // "METHOD path" of every write that came in
}

func newFaultProxy(t *testing.T, target string, rate float64, kinds ...fault) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("fault proxy: seed %d, %.0f%% of writes meet one of %d faults", seed, rate*100, len(kinds))
	p := &faultProxy{rp: httputil.NewSingleHostReverseProxy(u), rng: rand.New(rand.NewPCG(seed, 1)), rate: rate,
		kinds: kinds, counts: map[fault]int{}}
	// A killed client's requests end as "context canceled": expected here.
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	t.Cleanup(func() { t.Logf("fault proxy: %d writes, faults %s", p.writes, p.summary()) })
	return p
}

func (p *faultProxy) set(rate float64, kinds ...fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.kinds = rate, kinds
}

// writesSince returns the writes ("METHOD path") that came in after the
// first n, and how many came in all: writesSince(0) is every one.
func (p *faultProxy) writesSince(n int) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent[min(n, len(p.sent)):]), len(p.sent)
}

func (p *faultProxy) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for k, n := range p.counts {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (p *faultProxy) pick(r *http.Request) fault {
	if r.Method == http.MethodGet {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes++
	p.sent = append(p.sent, r.Method+" "+r.URL.Path)
	if len(p.kinds) == 0 || p.rng.Float64() >= p.rate {
		return ""
	}
	f := p.kinds[p.rng.IntN(len(p.kinds))]
	p.counts[f]++
	return f
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.pick(r)
	limited := func(hdr, body string) {
		if hdr != "" {
			w.Header().Set("Retry-After", hdr)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, body)
	}
	switch f {
	case "":
		p.rp.ServeHTTP(w, r)
	case f429ms:
		limited("", `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":300}`)
	case f429secs:
		limited("1", `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
	case f429date:
		limited(time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat), `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
	case f429bare:
		limited("", `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}`)
	case f503:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body><h1>503 Service Unavailable</h1></body></html>")
	case f504after:
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		w.WriteHeader(http.StatusGatewayTimeout)
		fmt.Fprint(w, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
	case fResetFirst:
		resetConn(w)
	case fResetAfter:
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		resetConn(w)
	}
}

// resetConn drops the client's connection with a TCP reset, no answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}
