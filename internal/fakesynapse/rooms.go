package fakesynapse

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file serves rooms, registration tokens and server notices, shaped
// after Synapse 1.160's answers (synapse/rest/admin/rooms.py,
// registration_tokens.py, server_notice_servlet.py). Server tasks (a room
// deletion, a history purge) finish at once but report "active" to their
// first status read, so a caller's polling is exercised.

// Event is a timeline event of a room.
type Event struct {
	ID      string
	Type    string
	Sender  string
	Content map[string]any
	TS      int64
}

// Room is a room as the fake keeps it. Creator is its first member.
type Room struct {
	ID        string
	Name      string
	Creator   string
	JoinRule  string // "public", "invite"; "" is invite
	Members   []string
	Invited   []string
	Levels    map[string]int64 // power levels by user; the creator has 100
	Blocked   bool
	BlockedBy string
	Events    []Event
}

// Token is a registration token as the fake keeps it.
type Token struct {
	Token       string
	UsesAllowed *int64
	ExpiryTime  *int64
	Pending     int64
	Completed   int64
}

// task is a room deletion or history purge. It reads "active" once, then
// "complete"; a deletion takes effect when it completes (until then the
// room is there, as while Synapse's task runs), a purge when it starts.
type task struct {
	id, roomID string
	reads      int
	queued     int    // reads left in "scheduled"
	finish     func() // run at completion; the caller holds s.mu
}

func (t *task) status() string {
	if t.queued > 0 {
		t.queued--
		return "scheduled"
	}
	t.reads++
	if t.reads == 1 {
		return "active"
	}
	if t.finish != nil {
		t.finish()
		t.finish = nil
	}
	return "complete"
}

// PutRoom stores a room as it is; an empty Creator or Levels are filled
// from Members.
func (s *Server) PutRoom(r Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Creator == "" && len(r.Members) > 0 {
		r.Creator = r.Members[0]
	}
	if r.Levels == nil {
		r.Levels = map[string]int64{r.Creator: 100}
	}
	s.rooms[r.ID] = &r
}

// Room returns a copy of a room, or nil when the fake does not hold it
// (never made, or deleted with purge).
func (s *Server) Room(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		return nil
	}
	c := *r
	c.Members, c.Invited, c.Events = slices.Clone(r.Members), slices.Clone(r.Invited), slices.Clone(r.Events)
	c.Levels = map[string]int64{}
	for k, v := range r.Levels {
		c.Levels[k] = v
	}
	return &c
}

// Blocked reports whether a room id is blocked; a room need not exist to be.
func (s *Server) Blocked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[id]
}

// RegistrationToken returns a copy of a token, or nil.
func (s *Server) RegistrationToken(tok string) *Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok {
		return nil
	}
	c := *t
	return &c
}

// Notices returns the server notices a user received, oldest first, as
// the events of their notice room.
func (s *Server) Notices(userID string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[s.noticeRoom(userID)]
	if r == nil {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(r.Events), func(e Event) bool { return e.Type != "m.room.message" })
}

func (s *Server) noticeRoom(userID string) string {
	local, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return "!notices-" + local + ":" + s.Name
}

// roomRoutes are the room, token and notice endpoints.
func (s *Server) roomRoutes() []route {
	const a = "_synapse/admin/"
	notice := func(w http.ResponseWriter, r *http.Request, seg []string) {
		txn := ""
		if len(seg) == 5 {
			txn = seg[4]
		}
		s.sendNotice(w, r, txn)
	}
	return []route{
		{"", a + "v1/registration_tokens/**", func(w http.ResponseWriter, r *http.Request, seg []string) { s.registrationTokens(w, r, seg[4:]) }},
		{"POST", a + "v1/send_server_notice", notice},
		{"PUT", a + "v1/send_server_notice/*", notice},
		{"", a + "v1/users/*/memberships", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.memberships(w, seg[4]) }},
		{"POST", a + "v1/join/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.join(w, r, seg[4]) }},
		{"POST", a + "v1/purge_history/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.purgeHistory(w, r, seg[4]) }},
		{"", a + "v1/purge_history_status/*", func(w http.ResponseWriter, _ *http.Request, seg []string) {
			s.taskStatus(w, s.purges, seg[4], func(t *task) any { return map[string]string{"status": t.status()} })
		}},
		{"GET", a + "v1/scheduled_tasks", func(w http.ResponseWriter, r *http.Request, _ []string) { s.scheduledTasks(w, r) }},
		{"", a + "v2/rooms/delete_status/*", func(w http.ResponseWriter, _ *http.Request, seg []string) {
			s.taskStatus(w, s.deletes, seg[5], func(t *task) any { return deleteStatus(t) })
		}},
		{"", a + "v2/rooms/*/delete_status", func(w http.ResponseWriter, _ *http.Request, seg []string) { s.roomDeleteTasks(w, seg[4]) }},
		{"DELETE", a + "v2/rooms/*", func(w http.ResponseWriter, r *http.Request, seg []string) { s.deleteRoom(w, r, seg[4]) }},
		{"", a + "v1/rooms/*/**", func(w http.ResponseWriter, r *http.Request, seg []string) {
			s.room(w, r, seg[4], strings.Join(seg[5:], "/"))
		}},
	}
}

var tokenChars = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

func tokenJSON(t *Token) map[string]any {
	return map[string]any{"token": t.Token, "uses_allowed": t.UsesAllowed, "pending": t.Pending,
		"completed": t.Completed, "expiry_time": t.ExpiryTime}
}

// registrationTokens serves /v1/registration_tokens[/new|/<token>].
func (s *Server) registrationTokens(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 && r.Method == http.MethodGet {
		s.listTokens(w)
		return
	}
	if len(rest) != 1 {
		errJSON(w, 404, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	var b map[string]json.RawMessage
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		s.Writes.Add(1)
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			errJSON(w, 400, "M_NOT_JSON", "Content not JSON.")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest[0] == "new" && r.Method == http.MethodPost {
		s.newToken(w, b)
		return
	}
	t := s.tokens[rest[0]]
	if t == nil {
		errJSON(w, 404, "M_NOT_FOUND", "No such registration token: "+rest[0])
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, tokenJSON(t))
	case http.MethodPut:
		l, ok := readTokenLimits(w, b)
		if !ok {
			return
		}
		if l.usesSet {
			t.UsesAllowed = l.uses
		}
		if l.expSet {
			t.ExpiryTime = l.exp
		}
		writeJSON(w, 200, tokenJSON(t))
	case http.MethodDelete:
		s.Writes.Add(1)
		delete(s.tokens, rest[0])
		writeJSON(w, 200, map[string]any{})
	default:
		errJSON(w, 405, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

func (s *Server) listTokens(w http.ResponseWriter) {
	s.mu.Lock()
	list := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(s.tokens)) {
		list = append(list, tokenJSON(s.tokens[k]))
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"registration_tokens": list})
}

// newToken makes the token body b asks for, or one named by the fake;
// s.mu is held.
func (s *Server) newToken(w http.ResponseWriter, b map[string]json.RawMessage) {
	var tok string
	if raw, has := b["token"]; has {
		if json.Unmarshal(raw, &tok) != nil {
			errJSON(w, 400, "M_INVALID_PARAM", "token must be a string")
			return
		}
		if tok == "" || len(tok) > 64 {
			errJSON(w, 400, "M_INVALID_PARAM", "token must not be empty and must not be longer than 64 characters")
			return
		}
		if !tokenChars.MatchString(tok) {
			errJSON(w, 400, "M_INVALID_PARAM", "token must consist only of characters matched by the regex [A-Za-z0-9-_]")
			return
		}
	} else {
		s.seq++
		tok = fmt.Sprintf("gen%013d", s.seq)
	}
	l, ok := readTokenLimits(w, b)
	if !ok {
		return
	}
	if _, dup := s.tokens[tok]; dup {
		errJSON(w, 400, "M_INVALID_PARAM", "Token already exists: "+tok)
		return
	}
	t := &Token{Token: tok, UsesAllowed: l.uses, ExpiryTime: l.exp}
	s.tokens[tok] = t
	writeJSON(w, 200, tokenJSON(t))
}

// tokenLimits are a token body's uses_allowed and expiry_time, each nil for
// null or absent, and whether the body gave it.
type tokenLimits struct {
	uses, exp       *int64
	usesSet, expSet bool
}

// readTokenLimits reads and checks the limits in body b as Synapse does;
// false when it has answered 400.
func readTokenLimits(w http.ResponseWriter, b map[string]json.RawMessage) (tokenLimits, bool) {
	var l tokenLimits
	var good bool
	if l.uses, l.usesSet, good = optInt(b, "uses_allowed"); !good || l.uses != nil && *l.uses < 0 {
		errJSON(w, 400, "M_INVALID_PARAM", "uses_allowed must be a non-negative integer or null")
		return l, false
	}
	if l.exp, l.expSet, good = optInt(b, "expiry_time"); !good {
		errJSON(w, 400, "M_INVALID_PARAM", "expiry_time must be an integer or null")
		return l, false
	}
	if l.exp != nil && *l.exp < time.Now().UnixMilli() {
		errJSON(w, 400, "M_INVALID_PARAM", "expiry_time must not be in the past")
		return l, false
	}
	return l, true
}

// optInt reads key of body b: absent (set false), null, or an integer
// (ok false for anything else).
func optInt(b map[string]json.RawMessage, key string) (v *int64, set bool, ok bool) {
	raw, has := b[key]
	if !has {
		return nil, false, true
	}
	if string(raw) == "null" {
		return nil, true, true
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		return nil, true, false
	}
	return &n, true, true
}

// sendNotice sends a server notice into the user's notice room (made on
// the first notice, with the user invited). A transaction id seen before
// from the same token answers the first event and sends none.
func (s *Server) sendNotice(w http.ResponseWriter, r *http.Request, txn string) {
	s.Writes.Add(1)
	var b struct {
		UserID  string         `json:"user_id"`
		Content map[string]any `json:"content"`
		Type    string         `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.UserID == "" || b.Content == nil {
		errJSON(w, 400, "M_MISSING_PARAM", "Missing params: ['user_id', 'content']")
		return
	}
	if !strings.HasSuffix(b.UserID, ":"+s.Name) {
		errJSON(w, 400, "M_UNKNOWN", "Server notices can only be sent to local users")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[b.UserID] == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	key := r.Header.Get("Authorization") + "\x00" + txn
	if ev, ok := s.txns[key]; ok && txn != "" {
		writeJSON(w, 200, map[string]string{"event_id": ev})
		return
	}
	id, sender := s.noticeRoom(b.UserID), "@notices:"+s.Name
	room := s.rooms[id]
	if room == nil {
		// Synapse makes the notices user with its first room (an account
		// of its own, which the fake's user list shows only from then on).
		if s.users[sender] == nil {
			s.users[sender] = &User{Name: sender, UserType: "support"}
		}
		room = &Room{ID: id, Name: "Server Notices", Creator: sender, Members: []string{sender},
			Invited: []string{b.UserID}, Levels: map[string]int64{sender: 100}}
		s.rooms[id] = room
	}
	ev := s.event(room, cmpOr(b.Type, "m.room.message"), sender, b.Content)
	if txn != "" {
		s.txns[key] = ev
	}
	writeJSON(w, 200, map[string]string{"event_id": ev})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// event appends an event to a room's timeline; the caller holds s.mu.
func (s *Server) event(room *Room, typ, sender string, content map[string]any) string {
	s.seq++
	id := fmt.Sprintf("$ev%d", s.seq)
	room.Events = append(room.Events, Event{ID: id, Type: typ, Sender: sender, Content: content, TS: time.Now().UnixMilli()})
	return id
}

// SendMessage adds a message to a room's timeline as sender and returns its id.
func (s *Server) SendMessage(roomID, sender, body string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomID]
	if r == nil {
		return ""
	}
	return s.event(r, "m.room.message", sender, map[string]any{"msgtype": "m.text", "body": body})
}

// memberships answers GET /v1/users/<id>/memberships.
func (s *Server) memberships(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[id] == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	out := map[string]string{}
	for _, r := range s.rooms {
		switch {
		case slices.Contains(r.Members, id):
			out[r.ID] = "join"
		case slices.Contains(r.Invited, id):
			out[r.ID] = "invite"
		}
	}
	writeJSON(w, 200, map[string]any{"memberships": out})
}

// join answers POST /v1/join/<room>: a local user joins a public room, or
// one the admin is in (Synapse invites them first).
func (s *Server) join(w http.ResponseWriter, r *http.Request, roomID string) {
	s.Writes.Add(1)
	var b struct {
		UserID string `json:"user_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&b)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[b.UserID]
	if u == nil {
		errJSON(w, 404, "M_NOT_FOUND", "User not found")
		return
	}
	room := s.rooms[roomID]
	if room == nil {
		errJSON(w, 404, "M_NOT_FOUND", "Room not found")
		return
	}
	if room.JoinRule != "public" && !slices.Contains(room.Members, "@admin:"+s.Name) {
		errJSON(w, 403, "M_FORBIDDEN", "You are not invited to this room.")
		return
	}
	s.addMember(room, b.UserID)
	writeJSON(w, 200, map[string]string{"room_id": roomID})
}

func (s *Server) addMember(room *Room, id string) {
	room.Invited = slices.DeleteFunc(room.Invited, func(x string) bool { return x == id })
	if !slices.Contains(room.Members, id) {
		room.Members = append(room.Members, id)
	}
}

// room serves /v1/rooms/<id>[/members|/state|/block|/messages|/make_room_admin].
func (s *Server) room(w http.ResponseWriter, r *http.Request, id, rest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest == "block" {
		switch r.Method {
		case http.MethodGet:
			out := map[string]any{"block": s.blocked[id]}
			if s.blocked[id] {
				out["user_id"] = "@admin:" + s.Name
			}
			writeJSON(w, 200, out)
		case http.MethodPut:
			s.Writes.Add(1)
			var b struct {
				Block *bool `json:"block"`
			}
			if json.NewDecoder(r.Body).Decode(&b) != nil || b.Block == nil {
				errJSON(w, 400, "M_BAD_JSON", "Param 'block' must be a boolean.")
				return
			}
			s.blocked[id] = *b.Block
			writeJSON(w, 200, map[string]bool{"block": *b.Block})
		default:
			errJSON(w, 405, "M_UNRECOGNIZED", "Unrecognized request")
		}
		return
	}
	room := s.rooms[id]
	if room == nil {
		errJSON(w, 404, "M_NOT_FOUND", "Room not found")
		return
	}
	switch {
	case rest == "" && r.Method == http.MethodGet:
		rule := cmpOr(room.JoinRule, "invite")
		writeJSON(w, 200, map[string]any{"room_id": id, "name": room.Name, "canonical_alias": nil,
			"joined_members": len(room.Members), "joined_local_members": s.local(room.Members),
			"version": "10", "creator": room.Creator, "encryption": nil, "federatable": true,
			"public": rule == "public", "join_rules": rule, "guest_access": nil,
			"history_visibility": "shared", "state_events": 3 + len(room.Members) + len(room.Invited), "room_type": nil})
	case rest == "members" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"members": slices.Clone(room.Members), "total": len(room.Members)})
	case rest == "state" && r.Method == http.MethodGet:
		s.state(w, room, r.URL.Query().Get("type"))
	case rest == "messages" && r.Method == http.MethodGet:
		s.messages(w, r, room)
	case rest == "make_room_admin" && r.Method == http.MethodPost:
		s.Writes.Add(1)
		var b struct {
			UserID string `json:"user_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		if s.users[b.UserID] == nil {
			errJSON(w, 400, "M_INVALID_PARAM", "Only local users can be admins of this room")
			return
		}
		// Synapse gives the level of the most powerful local member and
		// invites the user into a room that is not public.
		top := int64(0)
		for u, l := range room.Levels {
			if strings.HasSuffix(u, ":"+s.Name) && l > top {
				top = l
			}
		}
		room.Levels[b.UserID] = top
		if !slices.Contains(room.Members, b.UserID) && room.JoinRule != "public" && !slices.Contains(room.Invited, b.UserID) {
			room.Invited = append(room.Invited, b.UserID)
		}
		writeJSON(w, 200, map[string]any{})
	default:
		errJSON(w, 404, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

func (s *Server) local(ids []string) int {
	n := 0
	for _, id := range ids {
		if strings.HasSuffix(id, ":"+s.Name) {
			n++
		}
	}
	return n
}

// state answers the room's create, power levels, join rules and member
// events, or those of one type.
func (s *Server) state(w http.ResponseWriter, room *Room, typ string) {
	levels := map[string]int64{}
	for k, v := range room.Levels {
		levels[k] = v
	}
	evs := []map[string]any{
		{"type": "m.room.create", "state_key": "", "sender": room.Creator, "content": map[string]any{"room_version": "10", "creator": room.Creator}},
		{"type": "m.room.power_levels", "state_key": "", "sender": room.Creator, "content": map[string]any{"users": levels, "users_default": 0}},
		{"type": "m.room.join_rules", "state_key": "", "sender": room.Creator, "content": map[string]any{"join_rule": cmpOr(room.JoinRule, "invite")}},
	}
	for _, m := range room.Members {
		evs = append(evs, map[string]any{"type": "m.room.member", "state_key": m, "sender": m, "content": map[string]any{"membership": "join"}})
	}
	for _, m := range room.Invited {
		evs = append(evs, map[string]any{"type": "m.room.member", "state_key": m, "sender": room.Creator, "content": map[string]any{"membership": "invite"}})
	}
	if typ != "" {
		evs = slices.DeleteFunc(evs, func(e map[string]any) bool { return e["type"] != typ })
	}
	writeJSON(w, 200, map[string]any{"state": evs})
}

// messages pages through a room's timeline as the admin room messages API
// does: dir b (newest first) or f, from an offset token, a filter of
// senders and types, and end while more follow.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, room *Room) {
	q := r.URL.Query()
	var f struct {
		Senders []string `json:"senders"`
		Types   []string `json:"types"`
	}
	if raw := q.Get("filter"); raw != "" {
		if json.Unmarshal([]byte(raw), &f) != nil {
			errJSON(w, 400, "M_INVALID_PARAM", "Invalid filter JSON")
			return
		}
	}
	evs := slices.DeleteFunc(slices.Clone(room.Events), func(e Event) bool {
		return len(f.Senders) > 0 && !slices.Contains(f.Senders, e.Sender) || len(f.Types) > 0 && !slices.Contains(f.Types, e.Type)
	})
	if q.Get("dir") != "f" {
		slices.Reverse(evs)
	}
	from, _ := strconv.Atoi(q.Get("from"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 10
	}
	from = min(from, len(evs))
	end := min(from+limit, len(evs))
	chunk := []map[string]any{}
	for _, e := range evs[from:end] {
		chunk = append(chunk, map[string]any{"event_id": e.ID, "type": e.Type, "sender": e.Sender,
			"room_id": room.ID, "content": e.Content, "origin_server_ts": e.TS})
	}
	out := map[string]any{"chunk": chunk, "start": strconv.Itoa(from)}
	if end < len(evs) {
		out["end"] = strconv.Itoa(end)
	}
	writeJSON(w, 200, out)
}

// deleteRoom answers DELETE /v2/rooms/<id>: when its task completes the
// members are removed, the room blocked when asked, and with purge (the
// default) forgotten. A second deletion while one runs is refused (400).
func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request, id string) {
	s.Writes.Add(1)
	var b struct {
		Block *bool `json:"block"`
		Purge *bool `json:"purge"`
	}
	_ = json.NewDecoder(r.Body).Decode(&b)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.deletes {
		if t.roomID == id && t.finish != nil && t.queued == 0 {
			errJSON(w, 400, "M_UNKNOWN", "History purge already in progress for "+id)
			return
		}
	}
	s.seq++
	t := &task{id: fmt.Sprintf("del%d", s.seq), roomID: id, finish: func() {
		if b.Block != nil && *b.Block {
			s.blocked[id] = true
		}
		if room := s.rooms[id]; room != nil {
			room.Members, room.Invited = nil, nil
			if b.Purge == nil || *b.Purge {
				delete(s.rooms, id)
			}
		}
	}}
	t.queued = s.QueuedTaskReads
	s.deletes[t.id] = t
	writeJSON(w, 200, map[string]string{"delete_id": t.id})
}

func deleteStatus(t *task) map[string]any {
	return map[string]any{"delete_id": t.id, "room_id": t.roomID, "status": t.status(),
		"shutdown_room": map[string]any{"kicked_users": []string{}, "failed_to_kick_users": []string{}, "local_aliases": []string{}, "new_room_id": nil}}
}

// roomDeleteTasks answers GET /v2/rooms/<id>/delete_status: 404 when the
// room has no task.
func (s *Server) roomDeleteTasks(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(s.deletes)) {
		if t := s.deletes[k]; t.roomID == id && t.queued == 0 {
			res = append(res, deleteStatus(t))
		}
	}
	if len(res) == 0 {
		errJSON(w, 404, "M_NOT_FOUND", fmt.Sprintf("No delete task for room_id '%s' found", id))
		return
	}
	writeJSON(w, 200, map[string]any{"results": res})
}

// scheduledTasks answers GET /v1/scheduled_tasks, filtered by
// action_name, resource_id and status as Synapse filters it. A read of the
// list counts as a read of each task it shows.
func (s *Server) scheduledTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for action, tasks := range map[string]map[string]*task{"shutdown_and_purge_room": s.deletes, "purge_history": s.purges} {
		if a := q["action_name"]; len(a) > 0 && !slices.Contains(a, action) {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(tasks)) {
			t := tasks[k]
			if res := q.Get("resource_id"); res != "" && res != t.roomID {
				continue
			}
			st := t.status()
			if want := q["status"]; len(want) > 0 && !slices.Contains(want, st) {
				continue
			}
			out = append(out, map[string]any{"id": t.id, "action": action, "status": st, "resource_id": t.roomID})
		}
	}
	writeJSON(w, 200, map[string]any{"scheduled_tasks": out})
}

func (s *Server) taskStatus(w http.ResponseWriter, tasks map[string]*task, id string, body func(*task) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := tasks[id]
	if t == nil {
		errJSON(w, 404, "M_NOT_FOUND", "purge id '"+id+"' not found")
		return
	}
	writeJSON(w, 200, body(t))
}

// purgeHistory answers POST /v1/purge_history/<room>: the events before
// purge_up_to_ts go, except the newest event, which Synapse always keeps.
func (s *Server) purgeHistory(w http.ResponseWriter, r *http.Request, id string) {
	s.Writes.Add(1)
	var b struct {
		Before *int64 `json:"purge_up_to_ts"`
	}
	if json.NewDecoder(r.Body).Decode(&b) != nil || b.Before == nil {
		errJSON(w, 400, "M_INVALID_PARAM", "must specify purge_up_to_event_id or purge_up_to_ts")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	room := s.rooms[id]
	if room == nil {
		errJSON(w, 404, "M_NOT_FOUND", "Room not found")
		return
	}
	if n := len(room.Events); n > 0 {
		kept := slices.DeleteFunc(slices.Clone(room.Events[:n-1]), func(e Event) bool { return e.TS < *b.Before })
		room.Events = append(kept, room.Events[n-1])
	}
	s.seq++
	t := &task{id: fmt.Sprintf("purge%d", s.seq), roomID: id}
	s.purges[t.id] = t
	writeJSON(w, 200, map[string]string{"purge_id": t.id})
}

// PutToken stores a registration token as it is.
func (s *Server) PutToken(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.Token] = &t
}
