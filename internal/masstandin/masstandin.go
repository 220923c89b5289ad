// Package masstandin is a stand-in for the Matrix Authentication Service
// (MAS), for tests only: MAS itself (Rust) cannot be installed on the
// machines the integration tier runs on, while Synapse in MAS mode needs
// something to answer its token introspection and to provision its users.
//
// It follows MAS v1.22.0 (element-hq/matrix-authentication-service at the
// tag v1.22.0): the paths, request and response shapes of the admin API are
// those of docs/api/spec.json at that tag, and behaviour the spec leaves out
// is taken from crates/handlers/src/admin/v1 and crates/tasks at the same tag
// (read, not copied). It serves
//
//   - /.well-known/openid-configuration (what Synapse reads on start),
//   - /oauth2/token (client_credentials, client_secret_basic and
//     client_secret_post), /oauth2/introspect (for Synapse, with the shared
//     secret as a bearer token, as Synapse 1.160 sends it) and /oauth2/revoke,
//   - /api/admin/v1/… for users, user-emails, upstream-oauth-links and
//     -providers, compat-, oauth2-, user- and personal-sessions and
//     user-registration-tokens, with JSON:API shapes, cursor paging (page
//     size 10 unless page[first]/page[last] say otherwise) and errors as
//     {"errors":[{"title":…}]},
//   - /_matrix/client/v3/login with m.login.password, as MAS's compatibility
//     layer does: the way to check a password through MAS (a right one gives
//     a token that works against Synapse, a wrong one 403).
//
// Whenever a user's state changes it provisions the user into Synapse
// through /_synapse/mas/… (provision_user, delete_user, reactivate_user,
// upsert_device, delete_device, is_localpart_available) with the shared
// secret, as MAS does, so Synapse's side of a test is real.
//
// What it is not: there is no web UI, browser login, upstream OAuth login,
// e-mail sending or policy engine. Where MAS runs a job later (provisioning
// after an e-mail or lock change, deactivation), the stand-in does it before
// it answers. Passwords are stored as salted SHA-256, not argon2. State lives
// in memory and, when Config.StateFile is set, in a JSON file rewritten after
// each change, so a restart keeps users, sessions and tokens.
package masstandin

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Scopes the stand-in knows.
const (
	ScopeMASAdmin       = "urn:mas:admin"
	ScopeSynapseAdmin   = "urn:synapse:admin:*"
	ScopeMatrixAPI      = "urn:matrix:client:api:*"
	scopeMatrixAPIMSC   = "urn:matrix:org.matrix.msc2967.client:api:*"
	defaultTokenTTL     = 5 * time.Minute // MAS's default access token lifetime
	minPasswordLength   = 8
	defaultPageSize     = 10
	maxRequestBodyBytes = 1 << 20
)

// Provider is an upstream OAuth 2.0 provider, as configured in MAS.
type Provider struct {
	ID        string `json:"id"`         // a ULID
	HumanName string `json:"human_name"` // e.g. "Keycloak"
	Issuer    string `json:"issuer"`
	BrandName string `json:"brand_name,omitempty"`
}

// Config configures a stand-in.
type Config struct {
	// Issuer is the stand-in's public base URL, e.g. http://127.0.0.1:18040/.
	Issuer string
	// SynapseURL is where /_synapse/mas/… is reached; empty: provision nothing
	// (unit tests).
	SynapseURL string
	// SharedSecret is Synapse's matrix_authentication_service.secret: Synapse
	// sends it to introspect, the stand-in sends it to /_synapse/mas/….
	SharedSecret string
	// ServerName is the homeserver's name (user ids are @username:ServerName).
	ServerName string
	// AdminClients are the OAuth clients (id → secret) allowed the
	// urn:mas:admin scope, MAS's policy.data.admin_clients.
	AdminClients map[string]string
	// Providers are the upstream OAuth providers.
	Providers []Provider
	// TokenTTL is how long a client-credentials access token lives (default 5 min).
	TokenTTL time.Duration
	// PasswordsDisabled makes set-password answer 403, as MAS does with
	// passwords.enabled: false.
	PasswordsDisabled bool
	// StateFile, when set, persists the state (JSON, 0600) across restarts.
	StateFile string
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// HTTPClient calls Synapse (default: a client with a 60 s timeout).
	HTTPClient *http.Client
	// Logf, when set, receives what the stand-in cannot tell a caller (a
	// provisioning that failed after the answer, as MAS's jobs would log).
	Logf func(format string, args ...any)
}

// Server is a running stand-in's state. Its methods are safe for concurrent use.
type Server struct {
	cfg       Config
	providers map[string]Provider
	synapse   *synapseClient

	mu    sync.Mutex
	st    state
	ids   ulidGen
	users map[string]*sync.Mutex // per username: orders the Synapse calls of one user

	// The state file is written by one goroutine, after changes, not under
	// mu: a write and its fsync per change cost 10 ms each under the lock
	// and held every request up (500 users' writes took 24 s instead of 2).
	dirty   chan struct{} // one pending "write again"
	done    chan struct{} // closed by Close
	flushed chan error    // the flusher's last result, when it ends
}

// state is everything the stand-in knows; it is what the state file holds.
type state struct {
	Users              map[string]*user              `json:"users"` // by id
	Emails             map[string]*userEmail         `json:"emails"`
	Links              map[string]*upstreamLink      `json:"links"`
	CompatSessions     map[string]*compatSession     `json:"compat_sessions"`
	OAuth2Sessions     map[string]*oauth2Session     `json:"oauth2_sessions"`
	UserSessions       map[string]*userSession       `json:"user_sessions"`
	PersonalSessions   map[string]*personalSession   `json:"personal_sessions"`
	RegistrationTokens map[string]*registrationToken `json:"registration_tokens"`
	Tokens             map[string]*accessToken       `json:"tokens"` // by token string
}

type user struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	CreatedAt     time.Time  `json:"created_at"`
	LockedAt      *time.Time `json:"locked_at"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
	Admin         bool       `json:"admin"`
	LegacyGuest   bool       `json:"legacy_guest"`
	PasswordSalt  string     `json:"password_salt,omitempty"`
	PasswordHash  string     `json:"password_hash,omitempty"`
}

type userEmail struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

type upstreamLink struct {
	ID               string    `json:"id"`
	ProviderID       string    `json:"provider_id"`
	Subject          string    `json:"subject"`
	UserID           string    `json:"user_id,omitempty"`
	HumanAccountName *string   `json:"human_account_name"`
	CreatedAt        time.Time `json:"created_at"`
}

type compatSession struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	DeviceID   string     `json:"device_id"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	HumanName  *string    `json:"human_name"`
	// What MAS's activity tracker records: the login request's user agent
	// and address (the stand-in records them at login only).
	UserAgent    *string    `json:"user_agent,omitempty"`
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
	LastActiveIP *string    `json:"last_active_ip,omitempty"`
}

type oauth2Session struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id,omitempty"` // empty for client_credentials
	ClientID   string     `json:"client_id"`
	Scope      string     `json:"scope"`
	DeviceID   string     `json:"device_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Set only through /_standin/ (the stand-in tracks no activity).
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

type userSession struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Set only through /_standin/ (the stand-in tracks no activity).
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

type personalSession struct {
	ID          string     `json:"id"`
	OwnerClient string     `json:"owner_client"`
	ActorUserID string     `json:"actor_user_id"`
	HumanName   string     `json:"human_name"`
	Scope       string     `json:"scope"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Token       string     `json:"token"` // the current token; older ones are revoked on regenerate
}

type registrationToken struct {
	ID         string     `json:"id"`
	Token      string     `json:"token"`
	UsageLimit *uint32    `json:"usage_limit"`
	TimesUsed  uint32     `json:"times_used"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// token kinds
const (
	kindClient   = "client"   // client_credentials → oauth2 session without user
	kindCompat   = "compat"   // m.login.password → compat session
	kindPersonal = "personal" // personal session
	kindOAuth2   = "oauth2"   // user oauth2 session (AddOAuth2Session)
)

type accessToken struct {
	Kind      string     `json:"kind"`
	SessionID string     `json:"session_id"`
	ClientID  string     `json:"client_id,omitempty"`
	Scope     string     `json:"scope"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// New checks cfg and makes a stand-in, loading cfg.StateFile when it exists.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("masstandin: Issuer is required")
	}
	if !strings.HasSuffix(cfg.Issuer, "/") {
		cfg.Issuer += "/"
	}
	if cfg.ServerName == "" {
		return nil, errors.New("masstandin: ServerName is required")
	}
	if cfg.SynapseURL != "" && cfg.SharedSecret == "" {
		return nil, errors.New("masstandin: SharedSecret is required with SynapseURL")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = defaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		// Synapse provisions on: a timeout here answers 500 for a write
		// Synapse still completes. The rig's Synapse shares two cores
		// with three other tiers, so the wait is long.
		cfg.HTTPClient = &http.Client{Timeout: 3 * time.Minute}
	}
	s := &Server{cfg: cfg, providers: map[string]Provider{}, users: map[string]*sync.Mutex{}}
	for _, p := range cfg.Providers {
		if err := validULID(p.ID); err != nil {
			return nil, fmt.Errorf("masstandin: provider %q: id must be a ULID", p.ID)
		}
		s.providers[p.ID] = p
	}
	if cfg.SynapseURL != "" {
		s.synapse = &synapseClient{base: strings.TrimRight(cfg.SynapseURL, "/"), secret: cfg.SharedSecret, hc: cfg.HTTPClient}
	}
	s.dirty, s.done, s.flushed = make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
	s.st = newState()
	if cfg.StateFile != "" {
		b, err := os.ReadFile(cfg.StateFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("masstandin: read state: %w", err)
		default:
			if err := json.Unmarshal(b, &s.st); err != nil {
				return nil, fmt.Errorf("masstandin: state file %s: %w", cfg.StateFile, err)
			}
			s.st.fill()
		}
		go s.flusher()
	}
	return s, nil
}

// Close writes the state file a last time (when there is one) and stops
// its writer. The server must not be used afterwards.
func (s *Server) Close() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	close(s.done)
	return <-s.flushed
}

func newState() state {
	var st state
	st.fill()
	return st
}

// fill makes the maps a state file without them left nil.
func (st *state) fill() {
	if st.Users == nil {
		st.Users = map[string]*user{}
	}
	if st.Emails == nil {
		st.Emails = map[string]*userEmail{}
	}
	if st.Links == nil {
		st.Links = map[string]*upstreamLink{}
	}
	if st.CompatSessions == nil {
		st.CompatSessions = map[string]*compatSession{}
	}
	if st.OAuth2Sessions == nil {
		st.OAuth2Sessions = map[string]*oauth2Session{}
	}
	if st.UserSessions == nil {
		st.UserSessions = map[string]*userSession{}
	}
	if st.PersonalSessions == nil {
		st.PersonalSessions = map[string]*personalSession{}
	}
	if st.RegistrationTokens == nil {
		st.RegistrationTokens = map[string]*registrationToken{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*accessToken{}
	}
}

// saveLocked asks for the state file to be written; the writer coalesces
// the changes made while it writes. A change is on disk a few milliseconds
// after its answer: a stand-in killed with -9 may forget the last ones
// (scripts/synapse stops it with SIGTERM, which writes everything).
// Callers hold s.mu; it always succeeds (write errors go to Logf and Close).
func (s *Server) saveLocked() error {
	if s.cfg.StateFile != "" {
		select {
		case s.dirty <- struct{}{}:
		default: // a write is pending already
		}
	}
	return nil
}

// flusher writes the state file whenever asked, and once more at Close.
func (s *Server) flusher() {
	var last error
	write := func() {
		s.mu.Lock()
		b, err := json.Marshal(&s.st)
		s.mu.Unlock()
		if err == nil {
			err = writeFileAtomic(s.cfg.StateFile, b)
		}
		if err != nil {
			s.logf("save state: %v", err)
		}
		last = err
	}
	for {
		select {
		case <-s.dirty:
			write()
		case <-s.done:
			write()
			s.flushed <- last
			return
		}
	}
}

// writeFileAtomic replaces path with b (0600): temp file, fsync, rename.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mas-state-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

// userLock orders the work on one username, Synapse calls included, without
// holding the whole server while Synapse works.
func (s *Server) userLock(username string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.users[username]
	if m == nil {
		m = &sync.Mutex{}
		s.users[username] = m
	}
	return m
}

func (s *Server) newID() string { return s.ids.next(s.cfg.Now()) }

// randomToken is a token with MAS's prefix for its kind (mat_, mct_, mpt_).
func randomToken(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func (s *Server) userByUsernameLocked(username string) *user {
	for _, u := range s.st.Users {
		if u.Username == username {
			return u
		}
	}
	return nil
}

// emailsOfLocked lists a user's addresses, oldest first, as MAS provisions them.
func (s *Server) emailsOfLocked(userID string) []string {
	var es []*userEmail
	for _, e := range s.st.Emails {
		if e.UserID == userID {
			es = append(es, e)
		}
	}
	sortByID(es, func(e *userEmail) string { return e.ID })
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Email)
	}
	return out
}

// Handler serves the stand-in's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /oauth2/introspect", s.handleIntrospect)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("GET /_matrix/client/{version}/login", s.handleLoginFlows)
	mux.HandleFunc("POST /_matrix/client/{version}/login", s.handleCompatLogin)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	s.adminRoutes(mux)
	s.standinRoutes(mux)
	return mux
}
