// Command mas-standin runs the MAS stand-in (package masstandin) for the
// test rig, and prepares a Synapse-admin token through it.
//
//	mas-standin -listen 127.0.0.1:18040 -config mas.json
//	mas-standin bootstrap -config mas.json -admin admin -password-file F -token-out F
//
// The config is JSON; secrets are read from files, never given as values:
//
//	{"issuer": "http://127.0.0.1:18040/", "synapse_url": "http://127.0.0.1:18028",
//	 "shared_secret_file": "mas.secret", "server_name": "synbatch.test",
//	 "admin_clients": [{"id": "01J…", "secret_file": "client.secret"}],
//	 "providers": [{"id": "01J…", "human_name": "Keycloak", "issuer": "https://…"}],
//	 "token_ttl": "5m", "state_file": "mas-state.json"}
//
// bootstrap makes the admin known to MAS (it already exists in Synapse,
// made before Synapse was switched to MAS), gives it MAS's admin flag and
// the password in -password-file, and writes to -token-out (0600) the token
// of a personal session, owned by the first admin client, that acts as the
// admin with urn:synapse:admin:*: the Synapse-admin token tests use.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/synbatch/synbatch/internal/masstandin"
)

type fileConfig struct {
	Issuer           string `json:"issuer"`
	SynapseURL       string `json:"synapse_url"`
	SharedSecretFile string `json:"shared_secret_file"`
	ServerName       string `json:"server_name"`
	AdminClients     []struct {
		ID         string `json:"id"`
		SecretFile string `json:"secret_file"`
	} `json:"admin_clients"`
	Providers         []masstandin.Provider `json:"providers"`
	TokenTTL          string                `json:"token_ttl"`
	StateFile         string                `json:"state_file"`
	PasswordsDisabled bool                  `json:"passwords_disabled"`
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "bootstrap" {
		err = bootstrap(os.Args[2:])
	} else {
		err = serve(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mas-standin:", err)
		os.Exit(1)
	}
}

// readSecret reads a secret file, relative to the config's directory.
func readSecret(dir, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// loadConfig reads the config file; it also returns the first admin client.
func loadConfig(path string) (masstandin.Config, string, error) {
	var fc fileConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return masstandin.Config{}, "", err
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		return masstandin.Config{}, "", fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	cfg := masstandin.Config{
		Issuer: fc.Issuer, SynapseURL: fc.SynapseURL, ServerName: fc.ServerName,
		Providers: fc.Providers, PasswordsDisabled: fc.PasswordsDisabled,
		AdminClients: map[string]string{},
	}
	if cfg.SharedSecret, err = readSecret(dir, fc.SharedSecretFile); err != nil {
		return cfg, "", fmt.Errorf("shared secret: %w", err)
	}
	first := ""
	for _, c := range fc.AdminClients {
		sec, err := readSecret(dir, c.SecretFile)
		if err != nil || sec == "" {
			return cfg, "", fmt.Errorf("admin client %s: secret: %w", c.ID, errors.Join(err, errors.New("secret_file is required")))
		}
		cfg.AdminClients[c.ID] = sec
		if first == "" {
			first = c.ID
		}
	}
	if fc.TokenTTL != "" {
		if cfg.TokenTTL, err = time.ParseDuration(fc.TokenTTL); err != nil {
			return cfg, "", fmt.Errorf("token_ttl: %w", err)
		}
	}
	if fc.StateFile != "" {
		cfg.StateFile = fc.StateFile
		if !filepath.IsAbs(cfg.StateFile) {
			cfg.StateFile = filepath.Join(dir, cfg.StateFile)
		}
	}
	return cfg, first, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("mas-standin", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18040", "address to listen on")
	config := fs.String("config", "", "config file (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" {
		return errors.New("-config is required")
	}
	cfg, _, err := loadConfig(*config)
	if err != nil {
		return err
	}
	logger := log.New(os.Stderr, "mas-standin: ", log.LstdFlags|log.LUTC)
	cfg.Logf = logger.Printf
	s, err := masstandin.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logRequests(logger, s.Handler()), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	shutDown := make(chan struct{})
	go func() {
		defer close(shutDown)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	logger.Printf("listening on %s, issuer %s, synapse %s", ln.Addr(), cfg.Issuer, cfg.SynapseURL)
	err = srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		s.Close()
		return err
	}
	// Serve returns as Shutdown starts; let the requests in flight finish
	// before the last write of the state file.
	<-shutDown
	return s.Close()
}

// logRequests logs method, path (without the query, which may name users)
// and status; never bodies or headers, which carry secrets.
func logRequests(l *log.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		start := time.Now()
		h.ServeHTTP(rec, r)
		l.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.code, time.Since(start).Round(time.Millisecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

func bootstrap(args []string) error {
	fs := flag.NewFlagSet("mas-standin bootstrap", flag.ContinueOnError)
	config := fs.String("config", "", "config file (JSON)")
	admin := fs.String("admin", "admin", "the admin's username")
	passwordFile := fs.String("password-file", "", "file with the admin's password (optional)")
	tokenOut := fs.String("token-out", "", "where to write the Synapse-admin token (0600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *tokenOut == "" {
		return errors.New("-config and -token-out are required")
	}
	cfg, clientID, err := loadConfig(*config)
	if err != nil {
		return err
	}
	if clientID == "" {
		return errors.New("the config lists no admin client")
	}
	api := adminAPI{base: strings.TrimRight(cfg.Issuer, "/"), hc: &http.Client{Timeout: 60 * time.Second}}
	if api.token, err = api.clientCredentials(clientID, cfg.AdminClients[clientID]); err != nil {
		return err
	}
	id, err := api.ensureAdmin(*admin, *passwordFile)
	if err != nil {
		return err
	}
	token, err := api.personalSession(id)
	if err != nil {
		return err
	}
	tmp := *tokenOut + ".new"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, *tokenOut)
}

// adminAPI calls the stand-in's admin API at base with an admin token.
type adminAPI struct {
	base, token string
	hc          *http.Client
}

// clientCredentials gets an admin API token for the admin client.
func (a adminAPI) clientCredentials(clientID, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {masstandin.ScopeMASAdmin}}
	req, _ := http.NewRequest("POST", a.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code, err := doJSON(a.hc, req, &tok); err != nil || code != 200 {
		return "", fmt.Errorf("client credentials: HTTP %d: %v", code, err)
	}
	return tok.AccessToken, nil
}

// call sends body as JSON and decodes the answer into out.
func (a adminAPI) call(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	return doJSON(a.hc, req, out)
}

// ensureAdmin makes the user named admin exist, be an admin and (with a
// password file) have that password; it returns the user's id.
func (a adminAPI) ensureAdmin(admin, passwordFile string) (string, error) {
	var u struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	code, err := a.call("GET", "/api/admin/v1/users/by-username/"+url.PathEscape(admin), nil, &u)
	if code == 404 {
		// The admin exists in Synapse already: skip the availability check.
		code, err = a.call("POST", "/api/admin/v1/users", map[string]any{"username": admin, "skip_homeserver_check": true}, &u)
	}
	if err != nil || (code != 200 && code != 201) {
		return "", fmt.Errorf("admin user %s: HTTP %d: %v", admin, code, err)
	}
	if code, err := a.call("POST", "/api/admin/v1/users/"+u.Data.ID+"/set-admin", map[string]any{"admin": true}, nil); err != nil || code != 200 {
		return "", fmt.Errorf("set-admin: HTTP %d: %v", code, err)
	}
	if passwordFile == "" {
		return u.Data.ID, nil
	}
	pw, err := readSecret(".", passwordFile)
	if err != nil {
		return "", err
	}
	if code, err := a.call("POST", "/api/admin/v1/users/"+u.Data.ID+"/set-password", map[string]any{"password": pw, "skip_password_check": true}, nil); err != nil || code != 204 {
		return "", fmt.Errorf("set-password: HTTP %d: %v", code, err)
	}
	return u.Data.ID, nil
}

// personalSession opens a personal session for user id with Synapse admin
// scope and returns its access token.
func (a adminAPI) personalSession(id string) (string, error) {
	var ps struct {
		Data struct {
			Attributes struct {
				AccessToken string `json:"access_token"`
			} `json:"attributes"`
		} `json:"data"`
	}
	code, err := a.call("POST", "/api/admin/v1/personal-sessions", map[string]any{
		"actor_user_id": id, "human_name": "scripts/synapse test admin",
		"scope": masstandin.ScopeMatrixAPI + " " + masstandin.ScopeSynapseAdmin,
	}, &ps)
	if err != nil || code != 201 || ps.Data.Attributes.AccessToken == "" {
		return "", fmt.Errorf("personal session: HTTP %d: %v", code, err)
	}
	return ps.Data.Attributes.AccessToken, nil
}

func doJSON(hc *http.Client, req *http.Request, out any) (int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s", bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}
