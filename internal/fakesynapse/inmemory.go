package fakesynapse

import (
	"net/http"
	"net/http/httptest"
)

// InMemory carries a client's requests to h without a network: a test
// that gives it to synapse.Config.Transport can run on testing/synctest's
// clock, where a real connection would not let time advance.
func InMemory(h http.Handler) http.RoundTripper { return inMemory{h} }

type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
