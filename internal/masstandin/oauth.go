package masstandin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// oauthError is an RFC 6749 error answer.
func oauthError(w http.ResponseWriter, code int, kind, desc string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="mas-standin"`)
	}
	writeJSON(w, code, map[string]string{"error": kind, "error_description": desc})
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	iss := s.cfg.Issuer
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + "authorize",
		"token_endpoint":                                iss + "oauth2/token",
		"jwks_uri":                                      iss + "oauth2/keys.json",
		"registration_endpoint":                         iss + "oauth2/registration",
		"introspection_endpoint":                        iss + "oauth2/introspect",
		"revocation_endpoint":                           iss + "oauth2/revoke",
		"account_management_uri":                        iss + "account/",
		"account_management_actions_supported":          []string{"org.matrix.profile", "org.matrix.sessions_list", "org.matrix.session_view", "org.matrix.session_end"},
		"grant_types_supported":                         []string{"client_credentials"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                              []string{"openid", ScopeMASAdmin, ScopeMatrixAPI, ScopeSynapseAdmin},
		"response_types_supported":                      []string{"code"},
	})
}

// clientAuth authenticates an OAuth client by client_secret_basic or
// client_secret_post. ok is false when no client credentials were sent.
func (s *Server) clientAuth(r *http.Request) (clientID string, ok, valid bool) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if id == "" {
			return "", false, false
		}
	}
	want, known := s.cfg.AdminClients[id]
	if !known || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return id, true, false
	}
	return id, true, true
}

// parseForm reads an OAuth endpoint's form body (400 invalid_request when it cannot).
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodyBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form body")
		return false
	}
	return true
}

// authenticClient wants an admin client's valid credentials (401 invalid_client otherwise).
func (s *Server) authenticClient(w http.ResponseWriter, r *http.Request) (string, bool) {
	clientID, sent, valid := s.clientAuth(r)
	if !sent || !valid {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return "", false
	}
	return clientID, true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	clientID, ok := s.authenticClient(w, r)
	if !ok {
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported by the stand-in")
		return
	}
	scope := normalizeScope(r.PostForm.Get("scope"))
	for _, tok := range strings.Fields(scope) {
		// The only scope the policy grants a client on its own: admin
		// clients get urn:mas:admin. A client token carries no user, so a
		// Synapse scope would be useless to it (Synapse wants a username);
		// Synapse-admin tokens come from personal sessions.
		if tok != ScopeMASAdmin {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "scope "+tok+" is not allowed for client "+clientID)
			return
		}
	}
	now := s.now()
	exp := now.Add(s.cfg.TokenTTL)
	tok := randomToken("mat_")
	s.mu.Lock()
	sess := &oauth2Session{ID: s.newID(), ClientID: clientID, Scope: scope, CreatedAt: now}
	s.st.OAuth2Sessions[sess.ID] = sess
	s.st.Tokens[tok] = &accessToken{Kind: kindClient, SessionID: sess.ID, ClientID: clientID, Scope: scope, ExpiresAt: &exp}
	s.pruneLocked(now)
	err := s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.cfg.TokenTTL / time.Second),
		"scope":        scope,
	})
}

// pruneLocked forgets client tokens that expired a day ago, so a long run
// that renews its token every few minutes does not grow the state file.
func (s *Server) pruneLocked(now time.Time) {
	for k, t := range s.st.Tokens {
		if t.Kind == kindClient && t.ExpiresAt != nil && now.Sub(*t.ExpiresAt) > 24*time.Hour {
			delete(s.st.Tokens, k)
			delete(s.st.OAuth2Sessions, t.SessionID)
		}
	}
}

func normalizeScope(scope string) string { return strings.Join(strings.Fields(scope), " ") }

// introspection is what /oauth2/introspect answers about an active token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	Sub       string `json:"sub,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	ExpiresIn *int64 `json:"expires_in,omitempty"`
	DeviceID  string `json:"device_id,omitempty"`
}

// lookupLocked resolves a token to what introspection says of it; active is
// false for unknown, expired or revoked tokens, and for tokens of a finished
// session or of a locked or deactivated user.
func (s *Server) lookupLocked(tok string, now time.Time) (introspection, *user) {
	t := s.st.Tokens[tok]
	if t == nil || t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
		return introspection{}, nil
	}
	in := introspection{Active: true, Scope: t.Scope, ClientID: t.ClientID, TokenType: "access_token"}
	if t.ExpiresAt != nil {
		in.Exp = t.ExpiresAt.Unix()
		left := int64(t.ExpiresAt.Sub(now) / time.Second)
		in.ExpiresIn = &left
	}
	var u *user
	switch t.Kind {
	case kindClient:
		if sess := s.st.OAuth2Sessions[t.SessionID]; sess == nil || sess.FinishedAt != nil {
			return introspection{}, nil
		}
	case kindOAuth2:
		sess := s.st.OAuth2Sessions[t.SessionID]
		if sess == nil || sess.FinishedAt != nil {
			return introspection{}, nil
		}
		u = s.st.Users[sess.UserID]
		in.DeviceID = sess.DeviceID
	case kindCompat:
		sess := s.st.CompatSessions[t.SessionID]
		if sess == nil || sess.FinishedAt != nil {
			return introspection{}, nil
		}
		u = s.st.Users[sess.UserID]
		in.DeviceID = sess.DeviceID
		in.ClientID = "legacy"
	case kindPersonal:
		sess := s.st.PersonalSessions[t.SessionID]
		if sess == nil || sess.RevokedAt != nil || sess.Token != tok {
			return introspection{}, nil
		}
		u = s.st.Users[sess.ActorUserID]
	}
	if t.Kind != kindClient {
		if u == nil || u.LockedAt != nil || u.DeactivatedAt != nil {
			return introspection{}, nil
		}
		in.Username, in.Sub = u.Username, u.ID
		in.Scope = withStableAndUnstable(in.Scope)
	}
	return in, u
}

// withStableAndUnstable adds the other spelling of the Matrix API scope,
// as MAS's normalize_scope does, so old and new Synapses both accept it.
func withStableAndUnstable(scope string) string {
	f := strings.Fields(scope)
	has := map[string]bool{}
	for _, t := range f {
		has[t] = true
	}
	if has[ScopeMatrixAPI] && !has[scopeMatrixAPIMSC] {
		f = append(f, scopeMatrixAPIMSC)
	} else if has[scopeMatrixAPIMSC] && !has[ScopeMatrixAPI] {
		f = append(f, ScopeMatrixAPI)
	}
	return strings.Join(f, " ")
}

// introspectionAuth accepts Synapse's shared secret as a bearer token (what
// Synapse 1.160 sends) or an admin client's credentials.
func (s *Server) introspectionAuth(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got := strings.TrimPrefix(h, "Bearer ")
		return s.cfg.SharedSecret != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.SharedSecret)) == 1
	}
	_, sent, valid := s.clientAuth(r)
	return sent && valid
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	if !s.introspectionAuth(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "introspection needs the shared secret or an admin client")
		return
	}
	s.mu.Lock()
	in, _ := s.lookupLocked(r.PostForm.Get("token"), s.now())
	s.mu.Unlock()
	if !in.Active {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// handleRevoke revokes a token (RFC 7009: 200 whether or not it was known).
// A client may revoke its own client-credentials tokens and the tokens of
// personal sessions it owns.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	clientID, ok := s.authenticClient(w, r)
	if !ok {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Tokens[r.PostForm.Get("token")]
	if t != nil && t.RevokedAt == nil {
		switch {
		case t.Kind == kindClient && t.ClientID == clientID:
			t.RevokedAt = &now
			if sess := s.st.OAuth2Sessions[t.SessionID]; sess != nil && sess.FinishedAt == nil {
				sess.FinishedAt = &now
			}
		case t.Kind == kindPersonal:
			if sess := s.st.PersonalSessions[t.SessionID]; sess != nil && sess.OwnerClient == clientID && sess.RevokedAt == nil {
				sess.RevokedAt = &now
				t.RevokedAt = &now
			}
		}
		if err := s.saveLocked(); err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// --- the compatibility layer's password login -----------------------------

func matrixError(w http.ResponseWriter, code int, errcode, msg string) {
	writeJSON(w, code, map[string]string{"errcode": errcode, "error": msg})
}

func (s *Server) handleLoginFlows(w http.ResponseWriter, r *http.Request) {
	flows := []map[string]string{}
	if !s.cfg.PasswordsDisabled {
		flows = append(flows, map[string]string{"type": "m.login.password"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"flows": flows})
}

func hashPassword(salt, password string) string {
	h := sha256.Sum256([]byte(salt + "\x00" + password))
	return hex.EncodeToString(h[:])
}

// handleCompatLogin logs a user in with a password, as MAS's compatibility
// layer does for legacy clients: a compat session with a new device (made in
// Synapse too) and a token Synapse accepts. It is how a test checks a
// password set through the admin API.
func (s *Server) handleCompatLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type       string `json:"type"`
		Identifier struct {
			Type string `json:"type"`
			User string `json:"user"`
		} `json:"identifier"`
		User                     string `json:"user"`
		Password                 string `json:"password"`
		DeviceID                 string `json:"device_id"`
		InitialDeviceDisplayName string `json:"initial_device_display_name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes)).Decode(&body); err != nil {
		matrixError(w, http.StatusBadRequest, "M_NOT_JSON", "bad JSON body")
		return
	}
	if body.Type != "m.login.password" || s.cfg.PasswordsDisabled {
		matrixError(w, http.StatusBadRequest, "M_UNKNOWN", "unsupported login type")
		return
	}
	name := body.Identifier.User
	if name == "" {
		name = body.User
	}
	if strings.HasPrefix(name, "@") {
		name = strings.TrimPrefix(strings.TrimSuffix(name, ":"+s.cfg.ServerName), "@")
	}
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()

	u, status, code, msg := s.passwordLogin(name, body.Password)
	if u == nil {
		matrixError(w, status, code, msg)
		return
	}
	device := body.DeviceID
	if device == "" {
		device = strings.ToUpper(randomToken("")[:10])
	}
	if s.synapse != nil {
		req := map[string]any{"localpart": name, "device_id": device}
		if body.InitialDeviceDisplayName != "" {
			req["display_name"] = body.InitialDeviceDisplayName
		}
		if err := s.synapse.post(r.Context(), "/_synapse/mas/upsert_device", req); err != nil {
			matrixError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
			return
		}
	}
	tok, err := s.openCompatSession(r, u, device)
	if err != nil {
		matrixError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"user_id":      "@" + name + ":" + s.cfg.ServerName,
		"access_token": tok,
		"device_id":    device,
		"home_server":  s.cfg.ServerName,
	})
}

// passwordLogin checks a password login of user name: the user, or nil and
// the status, errcode and message that refuse it.
func (s *Server) passwordLogin(name, password string) (u *user, status int, code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u = s.userByUsernameLocked(name)
	switch {
	case u == nil || u.PasswordHash == "" ||
		subtle.ConstantTimeCompare([]byte(hashPassword(u.PasswordSalt, password)), []byte(u.PasswordHash)) != 1:
		return nil, http.StatusForbidden, "M_FORBIDDEN", "Invalid username/password"
	case u.DeactivatedAt != nil:
		return nil, http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated"
	case u.LockedAt != nil:
		return nil, http.StatusUnauthorized, "M_USER_LOCKED", "This account has been locked"
	}
	return u, 0, "", ""
}

// openCompatSession records a compat session of u on device, seen from r,
// and returns its new access token.
func (s *Server) openCompatSession(r *http.Request, u *user, device string) (string, error) {
	tok := randomToken("mct_")
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := &compatSession{ID: s.newID(), UserID: u.ID, DeviceID: device, CreatedAt: now, LastActiveAt: &now}
	if ua := r.UserAgent(); ua != "" {
		sess.UserAgent = &ua
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sess.LastActiveIP = &ip
	}
	s.st.CompatSessions[sess.ID] = sess
	s.st.Tokens[tok] = &accessToken{Kind: kindCompat, SessionID: sess.ID, Scope: ScopeMatrixAPI}
	return tok, s.saveLocked()
}
