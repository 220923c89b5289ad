package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// connFlags are the flags of every command that talks to a server. There is
// deliberately no flag that takes the token itself: argv is readable by every
// local user.
func connFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Usage: "homeserver base `URL`, e.g. https://matrix.example.org", EnvVars: []string{"SYNBATCH_SERVER"}},
		&cli.StringFlag{Name: "token-file", Usage: "`FILE` holding an admin access token (mode 0600); or set SYNBATCH_TOKEN", EnvVars: []string{"SYNBATCH_TOKEN_FILE"}},
		configFlag(),
		&cli.StringFlag{Name: "server-name", Usage: "server `NAME` for bare localparts (default: from the token's own user id)", EnvVars: []string{"SYNBATCH_SERVER_NAME"}},
		&cli.StringFlag{Name: "admin-path", Usage: "`PATH` of the Admin API, when a proxy moves it", Value: "", EnvVars: []string{"SYNBATCH_ADMIN_PATH"}},
		&cli.StringFlag{Name: "ca-file", Usage: "`FILE` of extra CA certificates (PEM) to trust", EnvVars: []string{"SYNBATCH_CA_FILE"}},
		&cli.BoolFlag{Name: "insecure", Usage: "do not verify the server's TLS certificate (warns, and is recorded in the journal)"},
		&cli.DurationFlag{Name: "timeout", Usage: "timeout of one request, a `DURATION` such as 90s", Value: 60 * time.Second, EnvVars: []string{"SYNBATCH_TIMEOUT"}},
		&cli.StringFlag{Name: "mas-client-id", Usage: "`ID` of a MAS admin client (in MAS's policy.data.admin_clients), for a server whose accounts live in MAS", EnvVars: []string{"SYNBATCH_MAS_CLIENT_ID"}},
		&cli.StringFlag{Name: "mas-client-secret-file", Usage: "`FILE` holding that MAS client's secret (mode 0600)", EnvVars: []string{"SYNBATCH_MAS_CLIENT_SECRET_FILE"}},
		&cli.StringFlag{Name: "mas-url", Usage: "`URL` of MAS's admin API, when it is not the issuer the homeserver names", EnvVars: []string{"SYNBATCH_MAS_URL"}},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log each request to stderr; -vv also the bodies (secrets redacted)", Count: new(int)},
	}
}

// configFlag is -c/--config, which every command that reads the config
// file takes (validate too: it reads map:, ignore: and phone_region:).
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config `FILE` (default synbatch.yaml in the user config directory ($XDG_CONFIG_HOME) or ~/.config, then synadm's synadm.yaml there)", EnvVars: []string{"SYNBATCH_CONFIG"}}
}

// fileConfig is ~/.config/synbatch.yaml; the synadm names are read too, so
// that synadm's config file works as it is.
//
// Its yaml tags are the keys a config file may hold: a key is added with
// one field here, and any other key is refused (configKeys).
type fileConfig struct {
	Server     string `yaml:"server"`
	BaseURL    string `yaml:"base_url"` // synadm
	Token      string `yaml:"token"`
	TokenFile  string `yaml:"token_file"`
	ServerName string `yaml:"server_name"`
	AdminPath  string `yaml:"admin_path"`
	SSLVerify  *bool  `yaml:"ssl_verify"`
	Timeout    any    `yaml:"timeout"` // synadm: seconds
	CAFile     string `yaml:"ca_file"`
	// PhoneRegion is --phone-region's default.
	PhoneRegion string `yaml:"phone_region"`
	// Map is --map's default: HEADER: column.
	Map map[string]string `yaml:"map"`
	// ActionValues is --action-value's default: VALUE: action.
	ActionValues map[string]string `yaml:"action_values"`
	// Ignore is --ignore's default: the headers to skip.
	Ignore []string `yaml:"ignore"`
	// Homeserver is synadm's server name ("auto-retrieval": asked of the
	// server, so unknown offline).
	Homeserver string `yaml:"homeserver"`
	// synadm's own settings, accepted and not used.
	SynadmUser any `yaml:"user"`
	MatrixPath any `yaml:"matrix_path"`
	Format     any `yaml:"format"`
	// MAS admin client, for a server that delegates accounts to MAS.
	MASClientID         string `yaml:"mas_client_id"`
	MASClientSecretFile string `yaml:"mas_client_secret_file"`
	MASURL              string `yaml:"mas_url"`
}

// configKeys returns the keys a config file may hold: fileConfig's yaml tags.
func configKeys() []string {
	t := reflect.TypeFor[fileConfig]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// checkConfigKeys refuses a key that synbatch does not read, naming its
// line and the closest known key: a misspelt phone_regoin: would otherwise
// be dropped without a word, and every national number refused. synadm's
// own file is not judged: synadm adds keys of its own from release to
// release, and synbatch only borrows it.
func checkConfigKeys(path string, b []byte) error {
	if filepath.Base(path) == "synadm.yaml" {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // empty, or not a mapping: Unmarshal into the struct says what is wrong
	}
	known := configKeys()
	var bad []string
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		k := m[i]
		if slices.Contains(known, k.Value) {
			continue
		}
		hint, dist := "", len(k.Value)/3+1
		for _, name := range known {
			if d := formats.EditDistance(k.Value, name); d < dist {
				hint, dist = name, d
			}
		}
		msg := fmt.Sprintf("line %d: unknown key %s", k.Line, formats.Quote(k.Value))
		if hint != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", formats.Quote(hint))
		}
		bad = append(bad, msg)
	}
	if len(bad) > 0 {
		return fmt.Errorf("config %s: %s; the keys are %s", path, strings.Join(bad, "; "), strings.Join(known, ", "))
	}
	return nil
}

// synadmServerName is synadm's homeserver setting when it names a server.
func (fc fileConfig) synadmServerName() string {
	if fc.Homeserver == "auto-retrieval" || fc.Homeserver == "auto" {
		return ""
	}
	return fc.Homeserver
}

// conn is a resolved connection: where, who, and how.
type conn struct {
	cfg         synapse.Config
	serverName  string
	phoneRegion string         // the config's phone_region
	headers     manifestConfig // the config's map
	source      string         // where the settings came from, for messages
	// mas is the MAS admin client's settings (ClientSecret read from its
	// file); empty when none is given.
	mas mas.Config
	// sess is what connect found: set by connect, ended by close.
	sess *session
}

// resolveConn merges flags and environment over the config file (synbatch's,
// else synadm's). It reads files but sends nothing.
func resolveConn(c *cli.Context, stderr io.Writer) (*conn, error) {
	fc, source, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	out := &conn{source: source, phoneRegion: fc.PhoneRegion, headers: manifestConfig{source: source, Map: fc.Map, Ignore: fc.Ignore, ActionValues: fc.ActionValues}}
	cfg := &out.cfg
	cfg.Server = first(c.String("server"), fc.Server, fc.BaseURL)
	if cfg.Server == "" {
		return nil, usageErr("no server: give --server URL (or SYNBATCH_SERVER, or server: in ~/.config/synbatch.yaml)")
	}
	if base, ok := baseURL(cfg.Server); ok {
		fmt.Fprintf(stderr, "synbatch: the server URL %s holds an API path; using its base %s (synbatch adds the paths itself)\n", cfg.Server, base)
		cfg.Server = base
	}
	cfg.AdminPath = first(c.String("admin-path"), fc.AdminPath)
	cfg.CAFile = first(c.String("ca-file"), fc.CAFile)
	cfg.Insecure = c.Bool("insecure") || (fc.SSLVerify != nil && !*fc.SSLVerify)
	cfg.Timeout = c.Duration("timeout")
	if !c.IsSet("timeout") && fc.Timeout != nil {
		switch t := fc.Timeout.(type) {
		case int:
			cfg.Timeout = time.Duration(t) * time.Second
		case float64:
			cfg.Timeout = time.Duration(t * float64(time.Second))
		}
	}
	out.serverName = first(c.String("server-name"), fc.ServerName)
	if err := masFrom(c, fc, &out.mas); err != nil {
		return nil, err
	}
	// With a MAS admin client the Synapse token may be left out: on a server
	// that delegates to MAS, synbatch has MAS issue one for the run.
	if cfg.Token, err = tokenFrom(c, fc, out.mas.ClientID != ""); err != nil {
		return nil, err
	}
	if tok, ok := strings.CutPrefix(cfg.Token, "Bearer "); ok {
		// Copied from a curl line or a browser's network tab: the word
		// belongs to the Authorization header, not to the token.
		fmt.Fprintln(stderr, `synbatch: the token starts with "Bearer ", which is the header's word, not part of the token; using what follows it`)
		cfg.Token = strings.TrimSpace(tok)
	}
	if cfg.Insecure {
		fmt.Fprintln(stderr, "synbatch: warning: TLS certificates are not verified (--insecure); this is recorded in the journal")
	}
	cfg.UserAgent = "synbatch/" + versionInfo().Version
	if n := c.Count("verbose"); n > 0 {
		cfg.Debug, cfg.DebugLevel = stderr, n
	}
	return out, nil
}

// baseURL returns server cut before an API path (/_matrix/… or
// /_synapse/…), as people paste from a curl line or the client's
// well-known, and whether it cut anything.
func baseURL(server string) (string, bool) {
	for _, p := range []string{"/_matrix/", "/_synapse/"} {
		if i := strings.Index(server+"/", p); i >= 0 {
			return strings.TrimRight(server[:i], "/"), true
		}
	}
	return server, false
}

// loadConfig reads --config, or synbatch.yaml in the user's config
// directory (os.UserConfigDir: $XDG_CONFIG_HOME or ~/.config on Linux) or
// in ~/.config, else synadm's synadm.yaml there. source says which.
func loadConfig(c *cli.Context) (fc fileConfig, source string, _ error) {
	if path := c.String("config"); c.IsSet("config") || path != "" {
		loaded, err := readConfig(path, &fc)
		if err == nil && !loaded && c.IsSet("config") {
			err = fmt.Errorf("config file %s does not exist", path)
		}
		if err != nil {
			return fc, "", usageErr("%v", err)
		}
		if loaded {
			return fc, path, nil
		}
		return fc, "flags", nil
	}
	names := []string{"synbatch.yaml"}
	if c.String("server") == "" {
		names = append(names, "synadm.yaml")
	}
	for _, name := range names {
		for _, dir := range configDirs() {
			path := filepath.Join(dir, name)
			if ok, err := readConfig(path, &fc); err != nil {
				return fc, "", usageErr("%v", err)
			} else if ok {
				return fc, path, nil
			}
		}
	}
	return fc, "flags", nil
}

// configDirs are where config files are looked for: the user's config
// directory, then ~/.config (where synadm keeps its own) when that differs.
func configDirs() []string {
	var dirs []string
	if d, err := os.UserConfigDir(); err == nil {
		dirs = append(dirs, d)
	}
	if home, err := os.UserHomeDir(); err == nil {
		if d := filepath.Join(home, ".config"); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// tokenFrom reads the token: --token-file, SYNBATCH_TOKEN, then the config
// file's token_file or token.
func tokenFrom(c *cli.Context, fc fileConfig, optional bool) (string, error) {
	var tok string
	var err error
	switch {
	case c.String("token-file") != "":
		tok, err = readTokenFile(c.String("token-file"))
	case os.Getenv("SYNBATCH_TOKEN") != "":
		tok = strings.TrimSpace(os.Getenv("SYNBATCH_TOKEN"))
	case fc.TokenFile != "":
		tok, err = readTokenFile(fc.TokenFile)
	default:
		tok = fc.Token
	}
	if err != nil {
		return "", usageErr("%v", err)
	}
	if tok == "" && !optional {
		return "", usageErr("no token: give --token-file PATH (or SYNBATCH_TOKEN_FILE, SYNBATCH_TOKEN, or a config file)")
	}
	return tok, nil
}

func readConfig(path string, fc *fileConfig) (bool, error) {
	b, fi, err := readRegular(path, "config file")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Judged before the token is read from it: a config file others can
	// change can send the token to their server through base_url.
	if err := checkConfigOwner(path, fi, os.Geteuid()); err != nil {
		return false, err
	}
	if err := checkConfigKeys(path, b); err != nil {
		return false, err
	}
	if err := yaml.Unmarshal(b, fc); err != nil {
		return false, fmt.Errorf("config %s: %w", path, err)
	}
	if fc.Token != "" && fi.Mode().Perm()&0o077 != 0 {
		return false, fmt.Errorf("config file %s holds the admin token and others can read it (mode %04o): run chmod 600 %s%s",
			path, fi.Mode().Perm(), path, synadmHint(path))
	}
	return true, nil
}

// checkConfigOwner refuses a config file that someone other than the caller
// (or root) can change: whoever can write it can redirect base_url and
// collect the token on the next run.
func checkConfigOwner(path string, fi os.FileInfo, me int) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("config file %s can be changed by others (mode %04o), who could point it at their own server and collect the token: run chmod 600 %s%s",
			path, fi.Mode().Perm(), path, synadmHint(path))
	}
	if uid, ok := fileOwner(fi); ok && uid != me && uid != 0 {
		return fmt.Errorf("config file %s belongs to user id %d, not to you (%d): its owner could point it at their own server and collect the token; use a config file of your own (--config)",
			path, uid, me)
	}
	return nil
}

// synadmHint tells a synadm user that the fix keeps synadm working.
func synadmHint(path string) string {
	if filepath.Base(path) != "synadm.yaml" {
		return ""
	}
	return " (synadm reads it as well as before; `synadm config` itself writes it 0600)"
}

// readRegular reads a small file of settings or secrets. The open does not
// block and anything but a regular file is refused: a FIFO planted there
// would otherwise hang the read for ever, deaf to Ctrl-C.
func readRegular(path, what string) ([]byte, os.FileInfo, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s %s is not a regular file (%s)", what, path, fi.Mode().Type())
	}
	const limit = 1 << 20 // far more than any config or token
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) > limit {
		return nil, nil, fmt.Errorf("%s %s is larger than 1 MiB", what, path)
	}
	return b, fi, nil
}

// readTokenFile refuses a file others can read: the token is an admin's key.
// The mode is read from the file opened, not from its path, so that a file
// swapped in between is never read.
func readTokenFile(path string) (string, error) {
	b, fi, err := readRegular(path, "token file")
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by others (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// masFrom reads the MAS admin client's settings: flags and environment
// over the config file. The secret comes only from a file others cannot
// read, as the token does; a client id without it (or the reverse) is
// refused before anything is sent.
func masFrom(c *cli.Context, fc fileConfig, out *mas.Config) error {
	out.ClientID = first(c.String("mas-client-id"), fc.MASClientID)
	secretFile := first(c.String("mas-client-secret-file"), fc.MASClientSecretFile)
	out.BaseURL = first(c.String("mas-url"), fc.MASURL)
	switch {
	case out.ClientID == "" && secretFile == "":
		return nil
	case out.ClientID == "":
		return usageErr("a MAS client secret file is given but no client id: give --mas-client-id ID (or SYNBATCH_MAS_CLIENT_ID, or mas_client_id: in the config file)")
	case secretFile == "":
		return usageErr("a MAS client id is given but no secret: give --mas-client-secret-file FILE (or SYNBATCH_MAS_CLIENT_SECRET_FILE, or mas_client_secret_file: in the config file)")
	}
	b, fi, err := readRegular(secretFile, "MAS client secret file")
	if err != nil {
		return usageErr("%v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return usageErr("MAS client secret file %s is readable by others (mode %04o): run chmod 600 %s", secretFile, fi.Mode().Perm(), secretFile)
	}
	if out.ClientSecret = strings.TrimSpace(string(b)); out.ClientSecret == "" {
		return usageErr("MAS client secret file %s is empty", secretFile)
	}
	return nil
}

// session is what connect found out about the server: whose token it is,
// and for a server that delegates its accounts to MAS, the MAS client and
// the personal session synbatch opened for the run.
type session struct {
	me     string
	issuer string      // "" when the homeserver keeps its own accounts
	mas    *mas.Client // nil likewise
	// personal is the MAS personal session issued for the run's Synapse
	// token ("" when the admin gave one): revoked by close.
	personal string
}

// masClient is the run's MAS client, nil on a server without MAS.
func (cn *conn) masClient() *mas.Client {
	if cn == nil || cn.sess == nil {
		return nil
	}
	return cn.sess.mas
}

// close ends what connect opened for the run: the personal session's token
// is revoked, even after Ctrl-C, so it never outlives the run.
func (cn *conn) close(ctx context.Context, stderr io.Writer) {
	if cn == nil || cn.sess == nil || cn.sess.personal == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := cn.sess.mas.RevokePersonalSession(ctx, cn.sess.personal); err != nil {
		fmt.Fprintf(stderr, "synbatch: warning: could not revoke the MAS personal session %s issued for this run: %v; revoke it in MAS\n", cn.sess.personal, err)
		return
	}
	cn.sess.personal = ""
}

// needMAS is the message for a server that delegates to MAS while no MAS
// admin client is configured: a usage error, since running again without
// one can never help.
func needMAS(issuer string) error {
	return usageErr("the server delegates its accounts to the Matrix Authentication Service at %s, so synbatch needs a MAS admin client: "+
		"give --mas-client-id ID and --mas-client-secret-file FILE (or SYNBATCH_MAS_CLIENT_ID and SYNBATCH_MAS_CLIENT_SECRET_FILE, "+
		"or mas_client_id: and mas_client_secret_file: in the config file), for a client listed in MAS's policy.data.admin_clients; "+
		"--mas-url if its admin API is not at the issuer. Nothing was sent", issuer)
}

// connect checks, before any row, that the server answers and the token is
// a server admin's; it returns the admin's user id.
func connect(ctx context.Context, client *synapse.Client, cn *conn, stderr io.Writer) (string, error) {
	if !strings.HasPrefix(client.Base(), "https://") {
		return connectServer(ctx, client, cn, stderr)
	}
	// A plain-HTTP port given as https:// keeps Synapse waiting for the
	// end of a request line that a TLS hello never sends: the client gives
	// up only at its 10 s handshake timeout, and says nothing useful. Ask
	// the same port in plain HTTP meanwhile: an answer means the URL's
	// scheme is wrong, said at once. A TLS port answers the plain request
	// with an error or a close, which is ignored.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		me  string
		err error
	}
	done, plain := make(chan result, 1), make(chan bool, 1)
	go func() { me, err := connectServer(ctx, client, cn, stderr); done <- result{me, err} }()
	go func() { plain <- speaksPlainHTTP(ctx, client.Base()) }()
	wrongScheme := func() error {
		plainURL := "http://" + strings.TrimPrefix(client.Base(), "https://")
		return stopped("cannot use the server: %s answers plain HTTP, not HTTPS, on that port: use %s", client.Base(), plainURL)
	}
	select {
	case r := <-done:
		// A server that answers the TLS hello at once (with a 400 in
		// plain HTTP: Go's "server gave HTTP response to HTTPS client")
		// can fail the HTTPS attempt before the plain probe is back: a
		// failed attempt waits for the probe's verdict (it ends within
		// 5 s), so the message does not depend on which came first.
		if r.err != nil && <-plain {
			return "", wrongScheme()
		}
		return r.me, r.err
	case p := <-plain:
		if p {
			return "", wrongScheme()
		}
	}
	r := <-done
	return r.me, r.err
}

// speaksPlainHTTP reports whether the server at the https URL base answers
// a plain-HTTP request for its Matrix versions on the same port.
func speaksPlainHTTP(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimPrefix(base, "https://")+"/_matrix/client/versions", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Versions []string `json:"versions"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v) == nil && len(v.Versions) > 0
}

// connectServer is connect without the https check. It first asks whether
// the server delegates its accounts to MAS: then a MAS admin client is
// needed (exit 2 without one, before anything is written), admin rights
// are checked by the token's scope, and without a Synapse token MAS issues
// one for the run. cn.sess keeps what it found.
func connectServer(ctx context.Context, client *synapse.Client, cn *conn, stderr io.Writer) (string, error) {
	if cn.sess != nil {
		return cn.sess.me, nil
	}
	issuer, err := client.AuthIssuer(ctx)
	if err != nil {
		return "", stopped("cannot use the server: ask whether it delegates its accounts to MAS: %w", err)
	}
	if issuer == "" {
		if !client.HasToken() {
			return "", usageErr("no token: give --token-file PATH (or SYNBATCH_TOKEN_FILE, SYNBATCH_TOKEN, or a config file); the MAS client settings serve only a server that delegates its accounts to MAS, and this one does not")
		}
		me, err := connectPlain(ctx, client)
		if err != nil {
			return "", err
		}
		cn.sess = &session{me: me}
		return me, nil
	}
	if cn.mas.ClientID == "" {
		return "", needMAS(issuer)
	}
	mcfg := cn.mas
	mcfg.Issuer, mcfg.Timeout, mcfg.UserAgent = issuer, cn.cfg.Timeout, cn.cfg.UserAgent
	mcfg.Rate, mcfg.Burst = cn.cfg.Rate, cn.cfg.Burst
	mcfg.Transport = masTransport(cn.cfg, stderr)
	mc, err := mas.New(mcfg)
	if err != nil {
		return "", usageErr("%v", err)
	}
	sess := &session{issuer: issuer, mas: mc}
	// A read that needs the admin token: it proves the credentials and the
	// admin API's address before any row.
	admin, err := mc.FirstAdmin(ctx)
	switch {
	case synapse.IsAuth(err):
		return "", usageErr("MAS at %s: %v; nothing was sent", issuer, err)
	case synapse.IsNotFound(err):
		return "", usageErr("MAS at %s: no admin API there (%v): give --mas-url with the address MAS serves /api/admin/v1 at; nothing was sent", mc.Issuer(), err)
	case err != nil:
		return "", stopped("cannot use MAS at %s: %w", issuer, err)
	}
	if !client.HasToken() {
		if admin == nil {
			return "", usageErr("no Synapse token, and MAS at %s has no active admin user to issue one for: give --token-file with a token of scope urn:synapse:admin:*", issuer)
		}
		ps, err := mc.CreatePersonalSession(ctx, admin.ID, "synbatch run", mas.SynapseAdminScope, 24*time.Hour)
		if err != nil {
			return "", stopped("ask MAS for a Synapse admin token for the run (a personal session of %s): %w", admin.Username, err)
		}
		client.SetToken(ps.AccessToken)
		sess.personal = ps.ID
	}
	cn.sess = sess
	me, err := client.Whoami(ctx)
	if err != nil {
		return "", stopped("cannot use the server: %w", err)
	}
	ok, err := client.CanAdmin(ctx)
	if err != nil {
		return "", stopped("cannot use the server: %w", err)
	}
	if !ok {
		return "", usageErr("the Synapse token belongs to %s but lacks the admin scope urn:synapse:admin:* (on a server that delegates to MAS, admin rights come from the token's scope): give a token with it, or leave --token-file out to have MAS issue one", me)
	}
	sess.me = me
	fmt.Fprintf(stderr, "synbatch: accounts live in MAS at %s\n", issuer)
	return me, nil
}

// masTransport carries MAS's requests as the Synapse client's settings say
// (CA file, --insecure, -v logging).
func masTransport(cfg synapse.Config, stderr io.Writer) http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Insecure || cfg.CAFile != "" {
		tlsCfg := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // only with --insecure, which warns
		if cfg.CAFile != "" {
			if pem, err := os.ReadFile(cfg.CAFile); err == nil {
				pool, perr := x509.SystemCertPool()
				if perr != nil {
					pool = x509.NewCertPool()
				}
				pool.AppendCertsFromPEM(pem)
				tlsCfg.RootCAs = pool
			}
		}
		tr.TLSClientConfig = tlsCfg
	}
	var rt http.RoundTripper = tr
	if cfg.Transport != nil {
		rt = cfg.Transport
	}
	return synapse.DebugTransport(rt, cfg.Debug, cfg.DebugLevel)
}

// connectPlain is connect for a server that keeps its own accounts.
func connectPlain(ctx context.Context, client *synapse.Client) (string, error) {
	me, err := client.Whoami(ctx)
	if err != nil {
		return "", stopped("cannot use the server: %w", err)
	}
	admin, err := client.IsAdmin(ctx, me)
	if synapse.IsUnrecognized(err) {
		// A server whose admin rights come from the token, not the account.
		admin, err = client.CanAdmin(ctx)
	}
	if err != nil && !synapse.IsAuth(err) {
		return "", stopped("cannot use the server: %w", err)
	}
	if !admin {
		return "", stopped("the token belongs to %s, who is not a server admin", me)
	}
	return me, nil
}

func stopped(format string, args ...any) error {
	return &exitError{code: exitStopped, err: fmt.Errorf(format, args...)}
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
