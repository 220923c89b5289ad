package fakesynapse

import (
	"net/http"
	"slices"
	"strings"
)

// route is one endpoint of the fake: a method ("" for any) and a path
// pattern of segments, where * stands for any one segment and a final **
// for any number of them, none included. serve gets the path's segments,
// unescaped.
type route struct {
	method  string
	pattern string
	serve   func(w http.ResponseWriter, r *http.Request, seg []string)
}

// match reports whether the request's method and segments fit the route.
func (rt route) match(r *http.Request, seg []string) bool {
	if rt.method != "" && r.Method != rt.method {
		return false
	}
	pat := strings.Split(rt.pattern, "/")
	for i, p := range pat {
		if p == "**" {
			return true
		}
		if i >= len(seg) || p != "*" && p != seg[i] {
			return false
		}
	}
	return len(seg) == len(pat)
}

// dispatch serves the request by the first route that matches it; false
// when none does.
func dispatch(routes []route, w http.ResponseWriter, r *http.Request, seg []string) bool {
	i := slices.IndexFunc(routes, func(rt route) bool { return rt.match(r, seg) })
	if i < 0 {
		return false
	}
	routes[i].serve(w, r, seg)
	return true
}

// openRoutes answer without the admin's token.
func (s *Server) openRoutes() []route {
	unrecognized := func(w http.ResponseWriter, _ *http.Request, _ []string) {
		// A Synapse that keeps its own accounts registers neither (no token needed).
		errJSON(w, 404, "M_UNRECOGNIZED", "Unrecognized request")
	}
	return []route{
		{"GET", "_matrix/client/v3/login", func(w http.ResponseWriter, _ *http.Request, _ []string) { s.loginFlows(w) }},
		{"", "_matrix/client/v3/login", func(w http.ResponseWriter, r *http.Request, _ []string) { s.login(w, r) }},
		{"", "_matrix/client/v3/logout", func(w http.ResponseWriter, r *http.Request, _ []string) { s.logout(w, r) }},
		{"", "_matrix/client/v1/auth_metadata", unrecognized},
		{"", "_matrix/client/unstable/org.matrix.msc2965/auth_issuer", unrecognized},
	}
}

// adminRoutes answer with the admin's token: rooms, tokens and notices
// (rooms.go), then accounts (fake.go).
func (s *Server) adminRoutes() []route {
	return slices.Concat(s.roomRoutes(), s.userRoutes(), s.exportRoutes())
}
