package main

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// noop answers the Admin API at once, for benchmarks only: every user is
// missing (GET 404), every PUT creates it (201). It records when it saw the
// first PUT, which is how the resume benchmark sees the first new row.
type noop struct {
	srv      *http.Server
	url      string
	puts     atomic.Int64
	firstPut atomic.Int64 // unix nanoseconds
	mu       sync.Mutex
}

func startNoop() (*noop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &noop{url: "http://" + ln.Addr().String()}
	n.srv = &http.Server{Handler: http.HandlerFunc(n.serve)}
	go n.srv.Serve(ln)
	return n, nil
}

var (
	whoami   = []byte(`{"user_id":"@admin:bench.test"}`)
	isAdmin  = []byte(`{"admin":true}`)
	notFound = []byte(`{"errcode":"M_NOT_FOUND","error":"User not found"}`)
	created  = []byte(`{}`)
)

func (n *noop) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/account/whoami"):
		w.Write(whoami)
	case strings.HasSuffix(r.URL.Path, "/admin"):
		w.Write(isAdmin)
	case r.Method == http.MethodGet:
		w.WriteHeader(404)
		w.Write(notFound)
	case r.Method == http.MethodPut:
		if n.puts.Add(1) == 1 {
			n.firstPut.Store(time.Now().UnixNano())
		}
		w.WriteHeader(201)
		w.Write(created)
	default:
		w.WriteHeader(404)
	}
}
