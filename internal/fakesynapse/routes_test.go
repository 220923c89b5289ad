package fakesynapse

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRouteMatchesMethodSegmentsWildcardsAndRest(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method, pattern, reqMethod, path string
		want                             bool
	}{
		{"", "a/b", "GET", "a/b", true},
		{"", "a/b", "GET", "a/b/c", false},
		{"", "a/b/c", "GET", "a/b", false},
		{"", "a/*/c", "PUT", "a/x/c", true},
		{"", "a/*/c", "PUT", "a/x/d", false},
		{"POST", "a/b", "GET", "a/b", false},
		{"POST", "a/b", "POST", "a/b", true},
		{"", "a/b/**", "GET", "a/b", true},
		{"", "a/b/**", "GET", "a/b/c/d", true},
		{"", "a/b/**", "GET", "a/c/d", false},
		{"", "a/*/**", "GET", "a", false},
	} {
		rt := route{method: c.method, pattern: c.pattern}
		r := httptest.NewRequest(c.reqMethod, "/"+c.path, nil)
		if got := rt.match(r, strings.Split(c.path, "/")); got != c.want {
			t.Errorf("route %s %q on %s %q: match %v, want %v", c.method, c.pattern, c.reqMethod, c.path, got, c.want)
		}
	}
}
