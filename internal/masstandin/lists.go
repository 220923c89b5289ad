package masstandin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// listOf answers a list of one kind of resource: filter reads the request's
// filters under the server's lock and says which items to keep (it answers
// a bad filter itself and returns false); the kept items are paged by id.
func listOf[T any](s *Server, w http.ResponseWriter, r *http.Request, path string,
	items func() map[string]*T, id func(*T) string, render func(*T) resource,
	filter func(q url.Values) (func(*T) bool, bool)) {
	q := r.URL.Query()
	p, err := parsePagination(q)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.mu.Lock()
	keep, ok := filter(q)
	if !ok {
		s.mu.Unlock()
		return
	}
	var xs []*T
	for _, x := range items() {
		if keep(x) {
			xs = append(xs, x)
		}
	}
	sortByID(xs, id)
	rs := make([]resource, len(xs))
	for i, x := range xs {
		rs[i] = render(x)
	}
	s.mu.Unlock()
	paginate(w, path, filterQuery(q), p, rs)
}

// getOne answers GET …/{id} for one kind of resource.
func getOne[T any](s *Server, w http.ResponseWriter, r *http.Request, what string, items func() map[string]*T, render func(*T) resource) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	x := items()[id]
	var res resource
	if x != nil {
		res = render(x)
	}
	s.mu.Unlock()
	if x == nil {
		apiError(w, http.StatusNotFound, "%s ID %s not found", what, id)
		return
	}
	single(w, http.StatusOK, res, "")
}

// knownUser checks a filter[user] under the lock: MAS answers 404 for an unknown one.
func (s *Server) knownUser(w http.ResponseWriter, userID string) bool {
	if userID != "" && s.st.Users[userID] == nil {
		apiError(w, http.StatusNotFound, "User ID %s not found", userID)
		return false
	}
	return true
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathUsers, func() map[string]*user { return s.st.Users }, func(u *user) string { return u.ID }, userResource,
		func(q url.Values) (func(*user) bool, bool) {
			admin, adminSet, err1 := boolFilter(q, "admin")
			guest, guestSet, err2 := boolFilter(q, "legacy-guest")
			if err := errors.Join(err1, err2); err != nil {
				apiError(w, http.StatusBadRequest, "%v", err)
				return nil, false
			}
			status, search := q.Get("filter[status]"), q.Get("filter[search]")
			if status != "" && status != "active" && status != "locked" && status != "deactivated" {
				apiError(w, http.StatusBadRequest, "invalid filter[status]: %q", status)
				return nil, false
			}
			return func(u *user) bool {
				switch {
				case adminSet && u.Admin != admin, guestSet && u.LegacyGuest != guest,
					search != "" && !strings.Contains(u.Username, search),
					status == "active" && (u.LockedAt != nil || u.DeactivatedAt != nil),
					status == "locked" && (u.LockedAt == nil || u.DeactivatedAt != nil),
					status == "deactivated" && u.DeactivatedAt == nil:
					return false
				}
				return true
			}, true
		})
}

func (s *Server) listEmails(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathEmails, func() map[string]*userEmail { return s.st.Emails }, func(e *userEmail) string { return e.ID }, emailResource,
		func(q url.Values) (func(*userEmail) bool, bool) {
			userID, email := q.Get("filter[user]"), q.Get("filter[email]")
			return func(e *userEmail) bool {
				return (userID == "" || e.UserID == userID) && (email == "" || e.Email == email)
			}, s.knownUser(w, userID)
		})
}

func (s *Server) getEmail(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "User email", func() map[string]*userEmail { return s.st.Emails }, emailResource)
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathLinks, func() map[string]*upstreamLink { return s.st.Links }, func(l *upstreamLink) string { return l.ID }, linkResource,
		func(q url.Values) (func(*upstreamLink) bool, bool) {
			userID, provID := q.Get("filter[user]"), q.Get("filter[provider]")
			subject, human := q.Get("filter[subject]"), strings.ToLower(q.Get("filter[human-account-name]"))
			_, subjectSet := q["filter[subject]"]
			if !s.knownUser(w, userID) {
				return nil, false
			}
			if _, known := s.providers[provID]; provID != "" && !known {
				apiError(w, http.StatusNotFound, "Upstream OAuth 2.0 Provider ID %s not found", provID)
				return nil, false
			}
			return func(l *upstreamLink) bool {
				switch {
				case userID != "" && l.UserID != userID, provID != "" && l.ProviderID != provID,
					subjectSet && l.Subject != subject,
					human != "" && (l.HumanAccountName == nil || !strings.Contains(strings.ToLower(*l.HumanAccountName), human)):
					return false
				}
				return true
			}, true
		})
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "Upstream OAuth 2.0 Link", func() map[string]*upstreamLink { return s.st.Links }, linkResource)
}

// sessionFilter reads filter[user] and filter[status] (active|finished) and
// keeps the sessions that match them and more.
func sessionFilter[T any](s *Server, w http.ResponseWriter, userOf func(*T) string, finishedOf func(*T) *time.Time, more func(*T) bool) func(url.Values) (func(*T) bool, bool) {
	return func(q url.Values) (func(*T) bool, bool) {
		userID, status := q.Get("filter[user]"), q.Get("filter[status]")
		if status != "" && status != "active" && status != "finished" {
			apiError(w, http.StatusBadRequest, "invalid filter[status]: %q", status)
			return nil, false
		}
		return func(x *T) bool {
			return (userID == "" || userOf(x) == userID) &&
				(status == "" || (status == "active") == (finishedOf(x) == nil)) && more(x)
		}, s.knownUser(w, userID)
	}
}

func anyOne[T any](*T) bool { return true }

func (s *Server) listCompatSessions(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathCompat, func() map[string]*compatSession { return s.st.CompatSessions }, func(c *compatSession) string { return c.ID }, compatResource,
		sessionFilter(s, w, func(c *compatSession) string { return c.UserID }, func(c *compatSession) *time.Time { return c.FinishedAt }, anyOne[compatSession]))
}

func (s *Server) getCompatSession(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "Compatibility session", func() map[string]*compatSession { return s.st.CompatSessions }, compatResource)
}

func (s *Server) listOAuth2Sessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clients, kind := q["filter[client]"], q.Get("filter[client-kind]")
	more := func(o *oauth2Session) bool {
		// Every client the stand-in knows is a static one (from its config).
		return (len(clients) == 0 || contains(clients, o.ClientID)) && (kind == "" || kind == "static")
	}
	listOf(s, w, r, pathOAuth2, func() map[string]*oauth2Session { return s.st.OAuth2Sessions }, func(o *oauth2Session) string { return o.ID }, oauth2Resource,
		sessionFilter(s, w, func(o *oauth2Session) string { return o.UserID }, func(o *oauth2Session) *time.Time { return o.FinishedAt }, more))
}

func (s *Server) getOAuth2Session(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "OAuth 2.0 session", func() map[string]*oauth2Session { return s.st.OAuth2Sessions }, oauth2Resource)
}

func (s *Server) listUserSessions(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathUserSess, func() map[string]*userSession { return s.st.UserSessions }, func(b *userSession) string { return b.ID }, userSessionResource,
		sessionFilter(s, w, func(b *userSession) string { return b.UserID }, func(b *userSession) *time.Time { return b.FinishedAt }, anyOne[userSession]))
}

func (s *Server) getUserSession(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "User session", func() map[string]*userSession { return s.st.UserSessions }, userSessionResource)
}

func listedPersonal(p *personalSession) resource { return personalResource(p, "") }

func (s *Server) listPersonalSessions(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, pathPersonal, func() map[string]*personalSession { return s.st.PersonalSessions }, func(p *personalSession) string { return p.ID }, listedPersonal,
		func(q url.Values) (func(*personalSession) bool, bool) {
			owner, actor, status := q.Get("filter[owner_client]"), q.Get("filter[actor_user]"), q.Get("filter[status]")
			if status != "" && status != "active" && status != "revoked" {
				apiError(w, http.StatusBadRequest, "invalid filter[status]: %q", status)
				return nil, false
			}
			return func(x *personalSession) bool {
				return (owner == "" || x.OwnerClient == owner) && (actor == "" || x.ActorUserID == actor) &&
					(status == "" || (status == "active") == (x.RevokedAt == nil))
			}, true
		})
}

func (s *Server) getPersonalSession(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "Personal session", func() map[string]*personalSession { return s.st.PersonalSessions }, listedPersonal)
}

func (s *Server) listRegTokens(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	render := func(t *registrationToken) resource { return regTokenResource(t, now) }
	listOf(s, w, r, pathRegTokens, func() map[string]*registrationToken { return s.st.RegistrationTokens }, func(t *registrationToken) string { return t.ID }, render,
		func(q url.Values) (func(*registrationToken) bool, bool) {
			used, usedSet, e1 := boolFilter(q, "used")
			revoked, revokedSet, e2 := boolFilter(q, "revoked")
			expired, expiredSet, e3 := boolFilter(q, "expired")
			valid, validSet, e4 := boolFilter(q, "valid")
			if err := errors.Join(e1, e2, e3, e4); err != nil {
				apiError(w, http.StatusBadRequest, "%v", err)
				return nil, false
			}
			return func(t *registrationToken) bool {
				isExpired := t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
				switch {
				case usedSet && (t.TimesUsed > 0) != used, revokedSet && (t.RevokedAt != nil) != revoked,
					expiredSet && isExpired != expired, validSet && t.valid(now) != valid:
					return false
				}
				return true
			}, true
		})
}

func (s *Server) getRegToken(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	getOne(s, w, r, "Registration token", func() map[string]*registrationToken { return s.st.RegistrationTokens },
		func(t *registrationToken) resource { return regTokenResource(t, now) })
}
