// Package fakesynapse is an in-memory stand-in for the parts of Synapse's
// Admin API that synbatch uses, with Synapse's hazards reproduced (a PUT
// replaces lists, moves a threepid silently, and half-creates a user whose
// external id is taken) and hooks to inject faults. It is for fault injection
// and fast tests; the integration tier proves the same against a real Synapse.
package fakesynapse

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// User is an account as the fake keeps it.
type User struct {
	Name        string
	Displayname string
	AvatarURL   string
	Password    string
	Admin       bool
	Deactivated bool
	Suspended   bool
	UserType    string
	// Appservice names the application service that registered it.
	Appservice  string
	Threepids   [][2]string // medium, address
	ExternalIDs [][2]string // provider, id
	// PasswordSets counts password writes (each logs the user out).
	PasswordSets int
	// Sessions counts sessions opened by a password login and not logged out.
	Sessions int
}

// Server is a fake homeserver.
type Server struct {
	*httptest.Server
	Name  string // server name
	Token string // the admin's token

	mu      sync.Mutex
	users   map[string]*User
	rooms   map[string]*Room
	blocked map[string]bool // room ids; a room need not exist to be blocked
	tokens  map[string]*Token
	txns    map[string]string // admin token + txn id -> event id of a notice
	deletes map[string]*task  // room deletions by delete id
	purges  map[string]*task  // history purges by purge id
	seq     int               // ids of events, tasks and generated tokens

	open, admin []route // the endpoints without and with the admin's token

	// Writes counts PUTs to /v2/users and suspensions.
	Writes atomic.Int64
	// Requests counts every request.
	Requests atomic.Int64
	// Fault, when set, may answer a request instead of the fake: return true
	// when it has written a response.
	Fault func(w http.ResponseWriter, r *http.Request) bool
	// NoPasswordLogin answers password logins as a server with password
	// login disabled (SSO only) does.
	NoPasswordLogin bool
	// Logins counts password logins tried.
	Logins atomic.Int64
	// QueuedTaskReads, when set, starts each new server task as Synapse's
	// task scheduler does when its five slots are busy: "scheduled" for
	// that many reads of its status, hidden meanwhile from the room's
	// delete status and from the "already in progress" guard (as in
	// Synapse 1.160), seen only in the task list and by its own id.
	QueuedTaskReads int
	// SSOProviders are the identity providers GET /_matrix/client/v3/login
	// lists in its m.login.sso flow; nil lists no SSO flow at all.
	SSOProviders []string
}

// New starts a fake for server name with one admin, @admin:name, that
// lists one SSO provider, oidc.
func New(name string) *Server {
	s := &Server{Name: name, Token: "admin-token", users: map[string]*User{}, SSOProviders: []string{"oidc"},
		rooms: map[string]*Room{}, blocked: map[string]bool{}, tokens: map[string]*Token{}, txns: map[string]string{},
		deletes: map[string]*task{}, purges: map[string]*task{}}
	s.users["@admin:"+name] = &User{Name: "@admin:" + name, Admin: true}
	s.open, s.admin = s.openRoutes(), s.adminRoutes()
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// User returns a copy of the account, or nil.
func (s *Server) User(id string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return nil
	}
	c := *u
	c.Threepids = slices.Clone(u.Threepids)
	c.ExternalIDs = slices.Clone(u.ExternalIDs)
	return &c
}

// Put stores an account as it is.
func (s *Server) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = &u
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func errJSON(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if f := s.Fault; f != nil && f(w, r) {
		return
	}
	seg := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i := range seg {
		seg[i], _ = url.PathUnescape(seg[i])
	}
	if dispatch(s.open, w, r, seg) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		errJSON(w, 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
		return
	}
	if !dispatch(s.admin, w, r, seg) {
		errJSON(w, 404, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

// userRoutes are the account endpoints.
func (s *Server) userRoutes() []route {
	owner := func(list func(*User) [][2]string) func(http.ResponseWriter, *http.Request, []string) {
		// .../<kind>/<medium or provider>/users/<address or id>
		return func(w http.ResponseWriter, _ *http.Request, seg []string) {
			s.owner(w, func(u *User) bool { return slices.Contains(list(u), [2]string{seg[4], seg[6]}) })
		}
	}
	return []route{
		{"", "_matrix/client/v3/account/whoami", func(w http.ResponseWriter, _ *http.Request, _ []string) {
			writeJSON(w, 200, map[string]string{"user_id": "@admin:" + s.Name})
		}},
		{"", "_synapse/admin/v1/users/*/admin", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.isAdmin(w, seg[4]) }},
		{"GET", "_synapse/admin/v2/users", func(w http.ResponseWriter, r *http.Request, _ []string) { s.listUsers(w, r) }},
		{"GET", "_synapse/admin/v2/users/*", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.getUser(w, seg[4]) }},
		{"PUT", "_synapse/admin/v2/users/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.putUser(w, r, seg[4]) }},
		{"", "_synapse/admin/v2/users/*", func(w http.ResponseWriter, _ *http.Request, _ []string) {
			errJSON(w, 405, "M_UNRECOGNIZED", "Unrecognized request")
		}},
		{"", "_synapse/admin/v2/users/*/devices", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.devices(w, seg[4]) }},
		{"", "_synapse/admin/v2/users/*/delete_devices", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.devices(w, seg[4]) }},
		{"POST", "_synapse/admin/v1/reset_password/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.resetPassword(w, r, seg[4]) }},
		{"PUT", "_synapse/admin/v1/suspend/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.suspend(w, r, seg[4]) }},
		{"", "_synapse/admin/v1/username_available", func(w http.ResponseWriter, r *http.Request, _ []string) {
			s.usernameAvailable(w, r.URL.Query().Get("username"))
		}},
		{"", "_synapse/admin/v1/threepid/*/users", func(w http.ResponseWriter, _ *http.Request, _ []string) {
			errJSON(w, 404, "M_NOT_FOUND", "bad path")
		}},
		{"", "_synapse/admin/v1/threepid/*/users/*", owner(func(u *User) [][2]string { return u.Threepids })},
		{"", "_synapse/admin/v1/auth_providers/*/users/*", owner(func(u *User) [][2]string { return u.ExternalIDs })},
	}
}

func (s *Server) isAdmin(w http.ResponseWriter, id string) {
	u := s.User(id)
	if u == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	writeJSON(w, 200, map[string]bool{"admin": u.Admin})
}

// devices answers a device list or deletion: sessions a password login
// opened are logged out by their token; the fake lists no devices of its
// own.
func (s *Server) devices(w http.ResponseWriter, id string) {
	if s.User(id) == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	writeJSON(w, 200, map[string]any{"devices": []any{}, "total": 0})
}

func (s *Server) owner(w http.ResponseWriter, match func(*User) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if match(u) {
			writeJSON(w, 200, map[string]string{"user_id": u.Name})
			return
		}
	}
	errJSON(w, 404, "M_NOT_FOUND", "User not found")
}

// listUsers pages through the users by id, by offset as Synapse does
// (from, limit; next_token while more follow). Filters are not served.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.users))
	s.mu.Unlock()
	end := min(from+limit, len(ids))
	page := []map[string]any{}
	for _, id := range ids[min(from, end):end] {
		page = append(page, map[string]any{"name": id})
	}
	out := map[string]any{"users": page, "total": len(ids)}
	if end < len(ids) {
		out["next_token"] = strconv.Itoa(end)
	}
	writeJSON(w, 200, out)
}

func (s *Server) getUser(w http.ResponseWriter, id string) {
	u := s.User(id)
	if u == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	tp := []map[string]any{}
	for _, t := range u.Threepids {
		tp = append(tp, map[string]any{"medium": t[0], "address": t[1], "added_at": 1, "validated_at": 1})
	}
	ids := []map[string]string{}
	for _, x := range u.ExternalIDs {
		ids = append(ids, map[string]string{"auth_provider": x[0], "external_id": x[1]})
	}
	var dn, av, ut, as any
	if u.Appservice != "" {
		as = u.Appservice
	}
	if u.Displayname != "" {
		dn = u.Displayname
	}
	if u.AvatarURL != "" {
		av = u.AvatarURL
	}
	if u.UserType != "" {
		ut = u.UserType
	}
	writeJSON(w, 200, map[string]any{"name": u.Name, "displayname": dn, "avatar_url": av, "threepids": tp,
		"external_ids": ids, "admin": u.Admin, "deactivated": u.Deactivated, "suspended": u.Suspended, "user_type": ut, "is_guest": 0, "erased": false, "appservice_id": as})
}

type putBody struct {
	Password      *string `json:"password"`
	LogoutDevices *bool   `json:"logout_devices"`
	Displayname   *string `json:"displayname"`
	AvatarURL     *string `json:"avatar_url"`
	Threepids     *[]struct {
		Medium, Address string
	} `json:"threepids"`
	ExternalIDs *[]struct {
		AuthProvider string `json:"auth_provider"`
		ExternalID   string `json:"external_id"`
	} `json:"external_ids"`
	Admin    *bool            `json:"admin"`
	UserType *json.RawMessage `json:"user_type"`
}

// putUser mimics Synapse: create-or-modify, lists replaced, a threepid of
// another user moved, an external id of another user refused with 409 after
// the account and its threepids were written.
// resetPassword sets a password as POST /v1/reset_password does; every
// call counts in PasswordSets (each logs the user out on a real server).
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, id string) {
	s.Writes.Add(1)
	var b struct {
		NewPassword string `json:"new_password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		errJSON(w, 400, "M_BAD_JSON", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	u.Password = b.NewPassword
	u.PasswordSets++
	u.Sessions = 0
	writeJSON(w, 200, map[string]any{})
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request, id string) {
	s.Writes.Add(1)
	var b putBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		errJSON(w, 400, "M_BAD_JSON", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, exists := s.users[id]
	status := 200
	if !exists {
		u = &User{Name: id}
		s.users[id] = u
		status = 201
	}
	if b.Password != nil {
		u.Password = *b.Password
		u.PasswordSets++
	}
	if b.Displayname != nil {
		u.Displayname = *b.Displayname
	}
	if b.AvatarURL != nil {
		u.AvatarURL = *b.AvatarURL
	}
	if b.Admin != nil {
		u.Admin = *b.Admin
	}
	if b.UserType != nil {
		var t *string
		_ = json.Unmarshal(*b.UserType, &t)
		u.UserType = ""
		if t != nil {
			u.UserType = *t
		}
	}
	if b.Threepids != nil {
		u.Threepids = nil
		for _, t := range *b.Threepids {
			tp := [2]string{t.Medium, strings.ToLower(t.Address)}
			for _, o := range s.users { // the silent move
				o.Threepids = slices.DeleteFunc(o.Threepids, func(x [2]string) bool { return x == tp })
			}
			u.Threepids = append(u.Threepids, tp)
		}
	}
	if b.ExternalIDs != nil {
		var ids [][2]string
		for _, x := range *b.ExternalIDs {
			id := [2]string{x.AuthProvider, x.ExternalID}
			for _, o := range s.users {
				if o != u && slices.Contains(o.ExternalIDs, id) {
					errJSON(w, 409, "M_UNKNOWN", "External id is already in use.")
					return
				}
			}
			ids = append(ids, id)
		}
		u.ExternalIDs = ids
	}
	writeJSON(w, status, map[string]any{"name": id})
}

// loginFlows answers GET /login: password login, and SSO when the fake
// lists providers.
func (s *Server) loginFlows(w http.ResponseWriter) {
	flows := []map[string]any{{"type": "m.login.password"}}
	if s.SSOProviders != nil {
		idps := []map[string]string{}
		for _, id := range s.SSOProviders {
			idps = append(idps, map[string]string{"id": id, "name": id})
		}
		flows = append(flows, map[string]any{"type": "m.login.sso", "identity_providers": idps})
	}
	writeJSON(w, 200, map[string]any{"flows": flows})
}

// suspend sets an account's suspension as Synapse's PUT /v1/suspend does.
func (s *Server) suspend(w http.ResponseWriter, r *http.Request, id string) {
	s.Writes.Add(1)
	var b struct {
		Suspend *bool `json:"suspend"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Suspend == nil {
		errJSON(w, 400, "M_BAD_JSON", "suspend: want a boolean")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	u.Suspended = *b.Suspend
	writeJSON(w, 200, map[string]bool{"user_" + id + "_suspended": *b.Suspend})
}

// usernameAvailable refuses, as Synapse does, a name any account holds in
// any letter case (a deactivated one too).
func (s *Server) usernameAvailable(w http.ResponseWriter, local string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.users {
		if strings.EqualFold(id, "@"+local+":"+s.Name) {
			errJSON(w, 400, "M_USER_IN_USE", "User ID already taken.")
			return
		}
	}
	writeJSON(w, 200, map[string]bool{"available": true})
}

// login takes a password login as Synapse does: 403 M_FORBIDDEN for a wrong
// password, a session token (user id + "/" + session) for a right one.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	s.Logins.Add(1)
	if s.NoPasswordLogin {
		errJSON(w, 400, "M_UNKNOWN", "Unknown login type m.login.password")
		return
	}
	var b struct {
		Identifier struct {
			User string `json:"user"`
		} `json:"identifier"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		errJSON(w, 400, "M_BAD_JSON", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[b.Identifier.User]
	if u == nil || u.Password == "" || u.Password != b.Password {
		errJSON(w, 403, "M_FORBIDDEN", "Invalid username or password")
		return
	}
	u.Sessions++
	writeJSON(w, 200, map[string]string{"user_id": u.Name, "access_token": "session/" + u.Name, "device_id": "CHECK"})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer session/")
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if !ok || u == nil || u.Sessions == 0 {
		errJSON(w, 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
		return
	}
	u.Sessions--
	writeJSON(w, 200, map[string]string{})
}
