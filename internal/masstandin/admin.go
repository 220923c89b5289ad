package masstandin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"time"
)

const apiBase = "/api/admin/v1"

// Paths of the resources, and their JSON:API types, as in MAS's model.rs.
const (
	pathUsers     = apiBase + "/users"
	pathEmails    = apiBase + "/user-emails"
	pathLinks     = apiBase + "/upstream-oauth-links"
	pathProviders = apiBase + "/upstream-oauth-providers"
	pathCompat    = apiBase + "/compat-sessions"
	pathOAuth2    = apiBase + "/oauth2-sessions"
	pathUserSess  = apiBase + "/user-sessions"
	pathPersonal  = apiBase + "/personal-sessions"
	pathRegTokens = apiBase + "/user-registration-tokens"
)

type callerKey struct{}

// caller is who called the admin API: an admin client, or an admin user.
type caller struct {
	clientID string
	userID   string
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	h := func(pattern string, f http.HandlerFunc) { mux.HandleFunc(pattern, s.admin(f)) }
	h("GET "+pathUsers, s.listUsers)
	h("POST "+pathUsers, s.addUser)
	h("GET "+pathUsers+"/{id}", s.getUser)
	h("GET "+pathUsers+"/by-username/{username}", s.getUserByUsername)
	h("POST "+pathUsers+"/{id}/set-password", s.setPassword)
	h("POST "+pathUsers+"/{id}/set-admin", s.setAdmin)
	h("POST "+pathUsers+"/{id}/deactivate", s.deactivateUser)
	h("POST "+pathUsers+"/{id}/reactivate", s.reactivateUser)
	h("POST "+pathUsers+"/{id}/lock", s.lockUser(true))
	h("POST "+pathUsers+"/{id}/unlock", s.lockUser(false))

	h("GET "+pathEmails, s.listEmails)
	h("POST "+pathEmails, s.addEmail)
	h("GET "+pathEmails+"/{id}", s.getEmail)
	h("DELETE "+pathEmails+"/{id}", s.deleteEmail)

	h("GET "+pathLinks, s.listLinks)
	h("POST "+pathLinks, s.addLink)
	h("GET "+pathLinks+"/{id}", s.getLink)
	h("DELETE "+pathLinks+"/{id}", s.deleteLink)

	h("GET "+pathProviders, s.listProviders)
	h("GET "+pathProviders+"/{id}", s.getProvider)

	h("GET "+pathCompat, s.listCompatSessions)
	h("GET "+pathCompat+"/{id}", s.getCompatSession)
	h("POST "+pathCompat+"/{id}/finish", s.finishCompatSession)
	h("GET "+pathOAuth2, s.listOAuth2Sessions)
	h("GET "+pathOAuth2+"/{id}", s.getOAuth2Session)
	h("POST "+pathOAuth2+"/{id}/finish", s.finishOAuth2Session)
	h("GET "+pathUserSess, s.listUserSessions)
	h("GET "+pathUserSess+"/{id}", s.getUserSession)
	h("POST "+pathUserSess+"/{id}/finish", s.finishUserSession)

	h("GET "+pathPersonal, s.listPersonalSessions)
	h("POST "+pathPersonal, s.addPersonalSession)
	h("GET "+pathPersonal+"/{id}", s.getPersonalSession)
	h("POST "+pathPersonal+"/{id}/revoke", s.revokePersonalSession)
	h("POST "+pathPersonal+"/{id}/regenerate", s.regeneratePersonalSession)

	h("GET "+pathRegTokens, s.listRegTokens)
	h("POST "+pathRegTokens, s.addRegToken)
	h("GET "+pathRegTokens+"/{id}", s.getRegToken)
	h("PUT "+pathRegTokens+"/{id}", s.editRegToken)
	h("POST "+pathRegTokens+"/{id}/revoke", s.revokeRegToken(true))
	h("POST "+pathRegTokens+"/{id}/unrevoke", s.revokeRegToken(false))
}

// admin lets a request through with a live token that carries urn:mas:admin
// (and, for a user's token, a user with the admin flag), as MAS's CallContext does.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") {
			apiError(w, http.StatusUnauthorized, "Missing authorization header")
			return
		}
		s.mu.Lock()
		in, u := s.lookupLocked(strings.TrimPrefix(h, "Bearer "), s.now())
		s.mu.Unlock()
		if !in.Active {
			apiError(w, http.StatusUnauthorized, "Invalid access token")
			return
		}
		if !hasScope(in.Scope, ScopeMASAdmin) {
			apiError(w, http.StatusForbidden, "Missing %s scope", ScopeMASAdmin)
			return
		}
		c := caller{clientID: in.ClientID}
		if u != nil {
			if !u.Admin {
				apiError(w, http.StatusForbidden, "User is not an admin")
				return
			}
			c = caller{userID: u.ID}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	}
}

func hasScope(scope, want string) bool {
	for _, t := range strings.Fields(scope) {
		if t == want {
			return true
		}
	}
	return false
}

// pathID reads the {id} path parameter, which must be a ULID (400 otherwise).
func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if validULID(id) != nil {
		apiError(w, http.StatusBadRequest, "Invalid ID %q: not a ULID", id)
		return "", false
	}
	return id, true
}

// decodeBody reads a JSON body into v. A body that is not JSON is a 400;
// missing required fields are checked by the handlers (422, as axum's Json does).
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		apiError(w, http.StatusBadRequest, "Failed to read the request body")
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 && optional {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		apiError(w, http.StatusBadRequest, "Failed to parse the request body as JSON: %v", err)
		return false
	}
	return true
}

func ts(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

func tsv(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// --- users -----------------------------------------------------------------

func userResource(u *user) resource {
	return newResource("user", pathUsers, u.ID, map[string]any{
		"username":       u.Username,
		"created_at":     tsv(u.CreatedAt),
		"locked_at":      ts(u.LockedAt),
		"deactivated_at": ts(u.DeactivatedAt),
		"admin":          u.Admin,
		"legacy_guest":   u.LegacyGuest,
	})
}

// validUsername is MAS's rule for a new username (lowercase letters, digits
// and ._=-/+, at most 255 bytes).
func validUsername(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._=-/+", c)) {
			return false
		}
	}
	return true
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username            *string `json:"username"`
		SkipHomeserverCheck bool    `json:"skip_homeserver_check"`
		Displayname         *string `json:"displayname"`
		AvatarURL           *string `json:"avatar_url"`
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
	exists := s.userByUsernameLocked(name) != nil
	s.mu.Unlock()
	if exists {
		apiError(w, http.StatusConflict, "User already exists")
		return
	}
	if !validUsername(name) {
		apiError(w, http.StatusBadRequest, "Username is not valid")
		return
	}
	if s.synapse != nil {
		// MAS finishes a create whose client went away (it stores the user,
		// then provisions it in a job): a killed client must not leave the
		// account in Synapse and not in MAS.
		ctx := context.WithoutCancel(r.Context())
		ok, err := s.synapse.localpartAvailable(ctx, name)
		if err != nil {
			apiError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if !ok && !body.SkipHomeserverCheck {
			apiError(w, http.StatusConflict, "Username is reserved by the homeserver")
			return
		}
		locked := false
		if err := s.synapse.post(ctx, "/_synapse/mas/provision_user", provisionRequest{
			Localpart: name, SetDisplayname: body.Displayname, SetAvatarURL: body.AvatarURL, Locked: &locked,
		}); err != nil {
			apiError(w, http.StatusInternalServerError, "Failed to provision user in Synapse: %v", err)
			return
		}
	}
	s.mu.Lock()
	u := &user{ID: s.newID(), Username: name, CreatedAt: s.now()}
	s.st.Users[u.ID] = u
	err := s.saveLocked()
	res := userResource(u)
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusCreated, res, "")
}

// withUser runs f on the user {id} under the server's lock; f returns the
// status to answer with the user (0: f wrote the answer itself).
func (s *Server) withUser(w http.ResponseWriter, r *http.Request, self string, f func(u *user) int) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	u := s.st.Users[id]
	if u == nil {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "User ID %s not found", id)
		return
	}
	code := f(u)
	var err error
	if code != 0 && r.Method != http.MethodGet {
		err = s.saveLocked()
	}
	res := userResource(u)
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if code != 0 {
		if self != "" {
			self = pathUsers + "/" + id + "/" + self
		}
		single(w, code, res, self)
	}
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.withUser(w, r, "", func(*user) int { return http.StatusOK })
}

func (s *Server) getUserByUsername(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	s.mu.Lock()
	u := s.userByUsernameLocked(name)
	var res resource
	if u != nil {
		res = userResource(u)
	}
	s.mu.Unlock()
	if u == nil {
		apiError(w, http.StatusNotFound, "User with username %q not found", name)
		return
	}
	single(w, http.StatusOK, res, pathUsers+"/by-username/"+name)
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Password          *string `json:"password"`
		SkipPasswordCheck *bool   `json:"skip_password_check"`
	}
	id, ok := pathID(w, r)
	if !ok || !decodeBody(w, r, &body, false) {
		return
	}
	if s.cfg.PasswordsDisabled {
		apiError(w, http.StatusForbidden, "Password auth is disabled")
		return
	}
	if body.Password == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `password`")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[id]
	if u == nil {
		apiError(w, http.StatusNotFound, "User ID %s not found", id)
		return
	}
	// MAS scores the password (zxcvbn); the stand-in only wants a length,
	// so a client that forgets skip_password_check still meets a 400.
	if (body.SkipPasswordCheck == nil || !*body.SkipPasswordCheck) && len([]rune(*body.Password)) < minPasswordLength {
		apiError(w, http.StatusBadRequest, "Password is too weak")
		return
	}
	salt := randomToken("")[:16]
	u.PasswordSalt, u.PasswordHash = salt, hashPassword(salt, *body.Password)
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setAdmin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Admin *bool `json:"admin"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Admin == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `admin`")
		return
	}
	s.withUser(w, r, "set-admin", func(u *user) int {
		u.Admin = *body.Admin
		return http.StatusOK
	})
}

// userByPath looks {id} up and returns its username, answering 400/404 itself.
func (s *Server) userByPath(w http.ResponseWriter, r *http.Request) (id, username string, ok bool) {
	id, ok = pathID(w, r)
	if !ok {
		return "", "", false
	}
	s.mu.Lock()
	u := s.st.Users[id]
	if u != nil {
		username = u.Username
	}
	s.mu.Unlock()
	if u == nil {
		apiError(w, http.StatusNotFound, "User ID %s not found", id)
		return "", "", false
	}
	return id, username, true
}

// deactivateUser does what MAS's deactivate handler and its job do: mark
// the user deactivated, finish its sessions, remove its e-mails, then ask
// Synapse to deactivate (and erase, unless skip_erase) the account. MAS
// answers before its job runs; the stand-in answers after, so a test reads
// Synapse back without waiting. A failed Synapse call is a 500 and a retry
// repeats it (deactivating twice is harmless on both sides).
func (s *Server) deactivateUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SkipErase bool `json:"skip_erase"`
	}
	if !decodeBody(w, r, &body, true) {
		return
	}
	id, name, ok := s.userByPath(w, r)
	if !ok {
		return
	}
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()
	now := s.now()
	s.mu.Lock()
	u := s.st.Users[id]
	if u.DeactivatedAt == nil {
		u.DeactivatedAt = &now
	}
	s.finishAllLocked(u.ID, now)
	for eid, e := range s.st.Emails {
		if e.UserID == u.ID {
			delete(s.st.Emails, eid)
		}
	}
	err := s.saveLocked()
	res := userResource(u)
	s.mu.Unlock()
	if err == nil && s.synapse != nil {
		err = s.synapse.post(r.Context(), "/_synapse/mas/delete_user", map[string]any{"localpart": name, "erase": !body.SkipErase})
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, res, pathUsers+"/"+id+"/deactivate")
}

// finishAllLocked ends every session of a user and every personal session
// acting as it, as MAS's deactivation job does.
func (s *Server) finishAllLocked(userID string, now time.Time) {
	for _, c := range s.st.CompatSessions {
		if c.UserID == userID && c.FinishedAt == nil {
			c.FinishedAt = &now
		}
	}
	for _, o := range s.st.OAuth2Sessions {
		if o.UserID == userID && o.FinishedAt == nil {
			o.FinishedAt = &now
		}
	}
	for _, b := range s.st.UserSessions {
		if b.UserID == userID && b.FinishedAt == nil {
			b.FinishedAt = &now
		}
	}
	for _, p := range s.st.PersonalSessions {
		if p.ActorUserID == userID && p.RevokedAt == nil {
			p.RevokedAt = &now
		}
	}
}

func (s *Server) reactivateUser(w http.ResponseWriter, r *http.Request) {
	id, name, ok := s.userByPath(w, r)
	if !ok {
		return
	}
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()
	if s.synapse != nil {
		if err := s.synapse.post(r.Context(), "/_synapse/mas/reactivate_user", map[string]any{"localpart": name}); err != nil {
			apiError(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	s.mu.Lock()
	u := s.st.Users[id]
	u.DeactivatedAt = nil
	err := s.saveLocked()
	res := userResource(u)
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, res, pathUsers+"/"+id+"/reactivate")
}

func (s *Server) lockUser(lockIt bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, name, ok := s.userByPath(w, r)
		if !ok {
			return
		}
		lock := s.userLock(name)
		lock.Lock()
		defer lock.Unlock()
		now := s.now()
		s.mu.Lock()
		u := s.st.Users[id]
		switch {
		case lockIt && u.LockedAt == nil:
			u.LockedAt = &now
		case !lockIt:
			u.LockedAt = nil
		}
		err := s.saveLocked()
		res := userResource(u)
		s.mu.Unlock()
		if err == nil {
			err = s.provision(r.Context(), id)
		}
		if err != nil {
			apiError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		verb := "unlock"
		if lockIt {
			verb = "lock"
		}
		single(w, http.StatusOK, res, pathUsers+"/"+id+"/"+verb)
	}
}

// provision sends Synapse what MAS's ProvisionUserJob sends: the user's
// e-mails and lock flag. Callers hold the user's lock.
func (s *Server) provision(ctx context.Context, userID string) error {
	if s.synapse == nil {
		return nil
	}
	s.mu.Lock()
	u := s.st.Users[userID]
	if u == nil {
		s.mu.Unlock()
		return nil
	}
	emails := s.emailsOfLocked(userID)
	locked := u.LockedAt != nil
	req := provisionRequest{Localpart: u.Username, SetEmails: &emails, Locked: &locked}
	s.mu.Unlock()
	return s.synapse.post(ctx, "/_synapse/mas/provision_user", req)
}

// --- e-mails -----------------------------------------------------------------

func emailResource(e *userEmail) resource {
	return newResource("user-email", pathEmails, e.ID, map[string]any{
		"created_at": tsv(e.CreatedAt),
		"user_id":    e.UserID,
		"email":      e.Email,
	})
}

func (s *Server) addEmail(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID *string `json:"user_id"`
		Email  *string `json:"email"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.UserID == nil || body.Email == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `user_id` or `email`")
		return
	}
	s.mu.Lock()
	u := s.st.Users[*body.UserID]
	var name string
	if u != nil {
		name = u.Username
	}
	s.mu.Unlock()
	if u == nil {
		apiError(w, http.StatusNotFound, "User ID %s not found", *body.UserID)
		return
	}
	if a, err := mail.ParseAddress(*body.Email); err != nil || a.Address != *body.Email || a.Name != "" {
		apiError(w, http.StatusBadRequest, "Email %q is not valid", *body.Email)
		return
	}
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()
	s.mu.Lock()
	// Unique across all users, the same user included: MAS counts the
	// address among everyone's before adding it.
	for _, e := range s.st.Emails {
		if e.Email == *body.Email {
			s.mu.Unlock()
			apiError(w, http.StatusConflict, "User email %q already in use", *body.Email)
			return
		}
	}
	e := &userEmail{ID: s.newID(), UserID: u.ID, Email: *body.Email, CreatedAt: s.now()}
	s.st.Emails[e.ID] = e
	err := s.saveLocked()
	res := emailResource(e)
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	// MAS provisions in a job and answers 201 whatever Synapse says later.
	if err := s.provision(r.Context(), u.ID); err != nil {
		s.logf("provision %s after adding an e-mail: %v", name, err)
	}
	single(w, http.StatusCreated, res, "")
}

func (s *Server) deleteEmail(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	e := s.st.Emails[id]
	var userID, name string
	if e != nil {
		userID = e.UserID
		if u := s.st.Users[userID]; u != nil {
			name = u.Username
		}
		delete(s.st.Emails, id)
	}
	err := s.saveLocked()
	s.mu.Unlock()
	if e == nil {
		apiError(w, http.StatusNotFound, "User email ID %s not found", id)
		return
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	lock := s.userLock(name)
	lock.Lock()
	defer lock.Unlock()
	if err := s.provision(r.Context(), userID); err != nil {
		s.logf("provision %s after removing an e-mail: %v", name, err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- upstream OAuth links and providers ---------------------------------------

func linkResource(l *upstreamLink) resource {
	var uid any
	if l.UserID != "" {
		uid = l.UserID
	}
	return newResource("upstream-oauth-link", pathLinks, l.ID, map[string]any{
		"created_at":         tsv(l.CreatedAt),
		"provider_id":        l.ProviderID,
		"subject":            l.Subject,
		"user_id":            uid,
		"human_account_name": l.HumanAccountName,
	})
}

// addLink follows MAS: a subject nobody owns yet is (created and) linked;
// a subject linked to anyone, the same user included, is a 409.
func (s *Server) addLink(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID           *string `json:"user_id"`
		ProviderID       *string `json:"provider_id"`
		Subject          *string `json:"subject"`
		HumanAccountName *string `json:"human_account_name"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.UserID == nil || body.ProviderID == nil || body.Subject == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `user_id`, `provider_id` or `subject`")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[*body.UserID]
	if u == nil {
		apiError(w, http.StatusNotFound, "User ID %s not found", *body.UserID)
		return
	}
	if _, ok := s.providers[*body.ProviderID]; !ok {
		apiError(w, http.StatusNotFound, "Upstream OAuth 2.0 Provider ID %s not found", *body.ProviderID)
		return
	}
	var l *upstreamLink
	for _, x := range s.st.Links {
		if x.ProviderID == *body.ProviderID && x.Subject == *body.Subject {
			l = x
		}
	}
	code := http.StatusOK
	switch {
	case l != nil && l.UserID != "":
		apiError(w, http.StatusConflict, "Upstream Oauth 2.0 Provider ID %s with subject %s is already linked to a user", l.ProviderID, l.Subject)
		return
	case l == nil:
		l = &upstreamLink{ID: s.newID(), ProviderID: *body.ProviderID, Subject: *body.Subject, HumanAccountName: body.HumanAccountName, CreatedAt: s.now()}
		s.st.Links[l.ID] = l
		code = http.StatusCreated
	}
	l.UserID = u.ID
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, code, linkResource(l), "")
}

func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Links[id] == nil {
		apiError(w, http.StatusNotFound, "Upstream OAuth 2.0 Link ID %s not found", id)
		return
	}
	delete(s.st.Links, id)
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func providerResource(p Provider, created time.Time) resource {
	str := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return newResource("upstream-oauth-provider", pathProviders, p.ID, map[string]any{
		"issuer":                      str(p.Issuer),
		"human_name":                  str(p.HumanName),
		"brand_name":                  str(p.BrandName),
		"created_at":                  tsv(created),
		"disabled_at":                 nil,
		"registration_token_required": false,
	})
}

// providerCreated is when a provider "was created": the time in its ULID.
func providerCreated(id string) time.Time {
	var ms uint64
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(strings.IndexByte(crockford, id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC()
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := parsePagination(q)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	enabled, set, err := boolFilter(q, "enabled")
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ps := append([]Provider(nil), s.cfg.Providers...)
	sortByID(ps, func(p Provider) string { return p.ID })
	rs := []resource{}
	if !set || enabled { // every configured provider is enabled
		for _, pr := range ps {
			rs = append(rs, providerResource(pr, providerCreated(pr.ID)))
		}
	}
	paginate(w, pathProviders, filterQuery(q), p, rs)
}

func (s *Server) getProvider(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, known := s.providers[id]
	if !known {
		apiError(w, http.StatusNotFound, "Upstream OAuth 2.0 Provider ID %s not found", id)
		return
	}
	single(w, http.StatusOK, providerResource(p, providerCreated(id)), "")
}

// --- sessions ----------------------------------------------------------------

func compatResource(c *compatSession) resource {
	return newResource("compat-session", pathCompat, c.ID, map[string]any{
		"user_id":         c.UserID,
		"device_id":       c.DeviceID,
		"user_session_id": nil,
		"redirect_uri":    nil,
		"created_at":      tsv(c.CreatedAt),
		"user_agent":      c.UserAgent,
		"last_active_at":  ts(c.LastActiveAt),
		"last_active_ip":  c.LastActiveIP,
		"finished_at":     ts(c.FinishedAt),
		"human_name":      c.HumanName,
	})
}

func oauth2Resource(o *oauth2Session) resource {
	var uid any
	if o.UserID != "" {
		uid = o.UserID
	}
	return newResource("oauth2-session", pathOAuth2, o.ID, map[string]any{
		"created_at":      tsv(o.CreatedAt),
		"finished_at":     ts(o.FinishedAt),
		"user_id":         uid,
		"user_session_id": nil,
		"client_id":       o.ClientID,
		"scope":           o.Scope,
		"user_agent":      nil,
		"last_active_at":  ts(o.LastActiveAt),
		"last_active_ip":  nil,
		"human_name":      nil,
	})
}

func userSessionResource(b *userSession) resource {
	return newResource("user-session", pathUserSess, b.ID, map[string]any{
		"created_at":     tsv(b.CreatedAt),
		"finished_at":    ts(b.FinishedAt),
		"user_id":        b.UserID,
		"user_agent":     nil,
		"last_active_at": ts(b.LastActiveAt),
		"last_active_ip": nil,
	})
}

// finishSession ends a session and deletes its device in Synapse (MAS
// syncs the user's devices in a job; the stand-in deletes the one device).
func (s *Server) finishSession(w http.ResponseWriter, r *http.Request, kind string) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	now := s.now()
	s.mu.Lock()
	var finished **time.Time
	var userID, device string
	var render func() resource
	switch kind {
	case pathCompat:
		if c := s.st.CompatSessions[id]; c != nil {
			finished, userID, device, render = &c.FinishedAt, c.UserID, c.DeviceID, func() resource { return compatResource(c) }
		}
	case pathOAuth2:
		if o := s.st.OAuth2Sessions[id]; o != nil {
			finished, userID, device, render = &o.FinishedAt, o.UserID, o.DeviceID, func() resource { return oauth2Resource(o) }
		}
	case pathUserSess:
		if b := s.st.UserSessions[id]; b != nil {
			finished, userID, render = &b.FinishedAt, b.UserID, func() resource { return userSessionResource(b) }
		}
	}
	if finished == nil {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "Session ID %s not found", id)
		return
	}
	if *finished != nil {
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "Session ID %s is already finished", id)
		return
	}
	*finished = &now
	err := s.saveLocked()
	res := render()
	var name string
	if u := s.st.Users[userID]; u != nil {
		name = u.Username
	}
	s.mu.Unlock()
	if err == nil && device != "" && name != "" && s.synapse != nil {
		err = s.synapse.post(r.Context(), "/_synapse/mas/delete_device", map[string]any{"localpart": name, "device_id": device})
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, res, kind+"/"+id+"/finish")
}

func (s *Server) finishCompatSession(w http.ResponseWriter, r *http.Request) {
	s.finishSession(w, r, pathCompat)
}
func (s *Server) finishOAuth2Session(w http.ResponseWriter, r *http.Request) {
	s.finishSession(w, r, pathOAuth2)
}
func (s *Server) finishUserSession(w http.ResponseWriter, r *http.Request) {
	s.finishSession(w, r, pathUserSess)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// --- personal sessions -------------------------------------------------------

func personalResource(p *personalSession, token string) resource {
	var ownerUser, ownerClient any
	if p.OwnerClient != "" {
		ownerClient = p.OwnerClient
	}
	var tok any
	if token != "" {
		tok = token
	}
	exp := ts(p.ExpiresAt)
	if p.RevokedAt != nil {
		exp = nil
	}
	return newResource("personal-session", pathPersonal, p.ID, map[string]any{
		"created_at":      tsv(p.CreatedAt),
		"revoked_at":      ts(p.RevokedAt),
		"owner_user_id":   ownerUser,
		"owner_client_id": ownerClient,
		"actor_user_id":   p.ActorUserID,
		"human_name":      p.HumanName,
		"scope":           p.Scope,
		"last_active_at":  nil,
		"last_active_ip":  nil,
		"expires_at":      exp,
		"access_token":    tok,
	})
}

// addPersonalSession makes a session owned by the calling client that acts
// as a user, with the scope asked for: with urn:matrix:client:api:* and
// urn:synapse:admin:* its token is a Synapse admin token for that user.
func (s *Server) addPersonalSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ActorUserID *string `json:"actor_user_id"`
		HumanName   *string `json:"human_name"`
		Scope       *string `json:"scope"`
		ExpiresIn   *uint32 `json:"expires_in"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.ActorUserID == nil || body.HumanName == nil || body.Scope == nil {
		apiError(w, http.StatusUnprocessableEntity, "missing field `actor_user_id`, `human_name` or `scope`")
		return
	}
	scope := normalizeScope(*body.Scope)
	if scope == "" {
		apiError(w, http.StatusBadRequest, "Invalid scope")
		return
	}
	c, _ := r.Context().Value(callerKey{}).(caller)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[*body.ActorUserID]
	if u == nil {
		apiError(w, http.StatusNotFound, "User not found")
		return
	}
	if u.DeactivatedAt != nil {
		apiError(w, http.StatusGone, "User is deactivated")
		return
	}
	tok := randomToken("mpt_")
	p := &personalSession{ID: s.newID(), OwnerClient: c.clientID, ActorUserID: u.ID, HumanName: *body.HumanName, Scope: scope, CreatedAt: now, Token: tok}
	s.setPersonalTokenLocked(p, tok, body.ExpiresIn, now)
	s.st.PersonalSessions[p.ID] = p
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusCreated, personalResource(p, tok), "")
}

func (s *Server) setPersonalTokenLocked(p *personalSession, tok string, expiresIn *uint32, now time.Time) {
	if old := s.st.Tokens[p.Token]; old != nil && old.RevokedAt == nil {
		old.RevokedAt = &now
	}
	var exp *time.Time
	if expiresIn != nil {
		e := now.Add(time.Duration(*expiresIn) * time.Second)
		exp = &e
	}
	p.Token, p.ExpiresAt = tok, exp
	s.st.Tokens[tok] = &accessToken{Kind: kindPersonal, SessionID: p.ID, Scope: p.Scope, ExpiresAt: exp}
}

func (s *Server) revokePersonalSession(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.PersonalSessions[id]
	switch {
	case p == nil:
		apiError(w, http.StatusNotFound, "Personal session not found")
		return
	case p.RevokedAt != nil:
		apiError(w, http.StatusConflict, "Personal session already revoked")
		return
	}
	p.RevokedAt = &now
	if t := s.st.Tokens[p.Token]; t != nil {
		t.RevokedAt = &now
	}
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, personalResource(p, ""), pathPersonal+"/"+id+"/revoke")
}

func (s *Server) regeneratePersonalSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ExpiresIn *uint32 `json:"expires_in"`
	}
	id, ok := pathID(w, r)
	if !ok || !decodeBody(w, r, &body, true) {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.PersonalSessions[id]
	if p == nil || p.RevokedAt != nil {
		apiError(w, http.StatusNotFound, "Personal session not found")
		return
	}
	tok := randomToken("mpt_")
	s.setPersonalTokenLocked(p, tok, body.ExpiresIn, now)
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusCreated, personalResource(p, tok), pathPersonal+"/"+id+"/regenerate")
}

// --- user registration tokens ------------------------------------------------

func (t *registrationToken) valid(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt)) &&
		(t.UsageLimit == nil || t.TimesUsed < *t.UsageLimit)
}

func regTokenResource(t *registrationToken, now time.Time) resource {
	return newResource("user-registration_token", pathRegTokens, t.ID, map[string]any{
		"token":        t.Token,
		"valid":        t.valid(now),
		"usage_limit":  t.UsageLimit,
		"times_used":   t.TimesUsed,
		"created_at":   tsv(t.CreatedAt),
		"last_used_at": ts(t.LastUsedAt),
		"expires_at":   ts(t.ExpiresAt),
		"revoked_at":   ts(t.RevokedAt),
	})
}

func (s *Server) addRegToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token      *string    `json:"token"`
		UsageLimit *uint32    `json:"usage_limit"`
		ExpiresAt  *time.Time `json:"expires_at"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	tok := randomToken("")[:12]
	if body.Token != nil {
		tok = *body.Token
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.RegistrationTokens {
		if t.Token == tok {
			// MAS's database refuses a second row with the same token; the
			// spec does not say with which answer.
			apiError(w, http.StatusConflict, "Registration token %q already exists", tok)
			return
		}
	}
	now := s.now()
	t := &registrationToken{ID: s.newID(), Token: tok, UsageLimit: body.UsageLimit, ExpiresAt: body.ExpiresAt, CreatedAt: now}
	s.st.RegistrationTokens[t.ID] = t
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusCreated, regTokenResource(t, now), "")
}

// editRegToken sets the fields present in the body; null removes a limit.
func (s *Server) editRegToken(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	id, ok := pathID(w, r)
	if !ok || !decodeBody(w, r, &body, false) {
		return
	}
	var limit *uint32
	var exp *time.Time
	if raw, set := body["usage_limit"]; set {
		if err := json.Unmarshal(raw, &limit); err != nil {
			apiError(w, http.StatusBadRequest, "invalid usage_limit: %v", err)
			return
		}
	}
	if raw, set := body["expires_at"]; set {
		if err := json.Unmarshal(raw, &exp); err != nil {
			apiError(w, http.StatusBadRequest, "invalid expires_at: %v", err)
			return
		}
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.RegistrationTokens[id]
	if t == nil {
		apiError(w, http.StatusNotFound, "Registration token with ID %s not found", id)
		return
	}
	if _, set := body["usage_limit"]; set {
		t.UsageLimit = limit
	}
	if _, set := body["expires_at"]; set {
		t.ExpiresAt = exp
	}
	if err := s.saveLocked(); err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	single(w, http.StatusOK, regTokenResource(t, now), "")
}

func (s *Server) revokeRegToken(revoke bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		now := s.now()
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.st.RegistrationTokens[id]
		switch {
		case t == nil:
			apiError(w, http.StatusNotFound, "Registration token with ID %s not found", id)
			return
		case revoke && t.RevokedAt != nil:
			apiError(w, http.StatusBadRequest, "Registration token with ID %s is already revoked", id)
			return
		case !revoke && t.RevokedAt == nil:
			apiError(w, http.StatusBadRequest, "Registration token with ID %s is not revoked", id)
			return
		}
		verb := "unrevoke"
		if revoke {
			t.RevokedAt, verb = &now, "revoke"
		} else {
			t.RevokedAt = nil
		}
		if err := s.saveLocked(); err != nil {
			apiError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		single(w, http.StatusOK, regTokenResource(t, now), pathRegTokens+"/"+id+"/"+verb)
	}
}

// UseRegistrationToken spends one use of a token, as a registration through
// MAS would (the stand-in has no registration page); an invalid token is an error.
func (s *Server) UseRegistrationToken(token string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.RegistrationTokens {
		if t.Token == token {
			if !t.valid(now) {
				return fmt.Errorf("registration token %q is not valid", token)
			}
			t.TimesUsed++
			t.LastUsedAt = &now
			return s.saveLocked()
		}
	}
	return fmt.Errorf("no registration token %q", token)
}
