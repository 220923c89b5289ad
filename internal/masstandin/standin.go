package masstandin

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Routes only the stand-in has, under /_standin/, for tests: what a real MAS
// makes when a person signs in through a browser (a Matrix client's OAuth 2.0
// session with its device, a browser session), which the stand-in has no
// pages for. They take an admin client's urn:mas:admin token, like the admin API.
func (s *Server) standinRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_standin/oauth2-sessions", s.admin(s.addOAuth2Session))
	mux.HandleFunc("POST /_standin/user-sessions", s.admin(s.addUserSessionHTTP))
	mux.HandleFunc("POST /_standin/{kind}/{id}/last-active", s.admin(s.setLastActive))
}

// setLastActive sets when a session was last active, which a real MAS's
// activity tracker records as the session is used and the stand-in does not:
// tests age sessions with it (--inactive-days). {kind} is compat-sessions,
// oauth2-sessions or user-sessions, as in the admin API's paths; the body is
// {"last_active_at": RFC 3339}. It answers the session as the admin API shows it.
func (s *Server) setLastActive(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		LastActiveAt *time.Time `json:"last_active_at"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.LastActiveAt == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `last_active_at`")
		return
	}
	at := body.LastActiveAt.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	var res resource
	switch kind := r.PathValue("kind"); kind {
	case "compat-sessions":
		c := s.st.CompatSessions[id]
		if c == nil {
			break
		}
		c.LastActiveAt = &at
		res = compatResource(c)
	case "oauth2-sessions":
		o := s.st.OAuth2Sessions[id]
		if o == nil {
			break
		}
		o.LastActiveAt = &at
		res = oauth2Resource(o)
	case "user-sessions":
		b := s.st.UserSessions[id]
		if b == nil {
			break
		}
		b.LastActiveAt = &at
		res = userSessionResource(b)
	default:
		apiError(w, http.StatusNotFound, "no session kind %q", kind)
		return
	}
	if res.ID == "" {
		apiError(w, http.StatusNotFound, "Session ID %s not found", id)
		return
	}
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, res, "")
}

// addOAuth2Session signs a user in as a Matrix client would through MAS: an
// OAuth 2.0 session with a device (made in Synapse too) and an access token
// Synapse accepts. Body {"username": …, "device_id": optional}; answers 201
// with the session as the admin API shows it, plus access_token and device_id.
func (s *Server) addOAuth2Session(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username *string `json:"username"`
		DeviceID string  `json:"device_id"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Username == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `username`")
		return
	}
	name := *body.Username
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()
	s.mu.Lock()
	u := s.userByUsernameLocked(name)
	ok := u != nil && u.DeactivatedAt == nil && u.LockedAt == nil
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "No active user %q", name)
		return
	}
	device := body.DeviceID
	if device == "" {
		device = strings.ToUpper(randomToken("")[:10])
	}
	if s.synapse != nil {
		if err := s.synapse.post(r.Context(), "/_synapse/mas/upsert_device", map[string]any{"localpart": name, "device_id": device}); err != nil {
			apiError(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	c, _ := r.Context().Value(callerKey{}).(caller)
	tok := randomToken("mat_")
	scope := ScopeMatrixAPI + " urn:matrix:client:device:" + device
	s.mu.Lock()
	o := &oauth2Session{ID: s.newID(), UserID: u.ID, ClientID: c.clientID, Scope: scope, DeviceID: device, CreatedAt: s.now()}
	s.st.OAuth2Sessions[o.ID] = o
	s.st.Tokens[tok] = &accessToken{Kind: kindOAuth2, SessionID: o.ID, ClientID: c.clientID, Scope: scope}
	s.saveLocked()
	res := oauth2Resource(o)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"data": res, "access_token": tok, "device_id": device})
}

func (s *Server) addUserSessionHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username string `json:"username"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	id, err := s.AddUserSession(body.Username)
	if err != nil {
		apiError(w, http.StatusNotFound, "%v", err)
		return
	}
	s.mu.Lock()
	res := userSessionResource(s.st.UserSessions[id])
	s.mu.Unlock()
	single(w, http.StatusCreated, res, "")
}

// AddUserSession records a browser session for a user, which the stand-in
// has no web login to make; tests use it to have something to list and finish.
func (s *Server) AddUserSession(username string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByUsernameLocked(username)
	if u == nil {
		return "", fmt.Errorf("no user %q", username)
	}
	b := &userSession{ID: s.newID(), UserID: u.ID, CreatedAt: s.now()}
	s.st.UserSessions[b.ID] = b
	return b.ID, s.saveLocked()
}
