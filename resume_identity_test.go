package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/internal/fakesynapse"
)

// flip is one option set differently on a resume than on the run that
// finished the rows: extra arguments, environment and config keys.
type flip struct {
	args []string
	env  map[string]string
	conf map[string]string // config-file lines key: value added to the base config
	// refused: the resume must stop before its first write (exit 2); else
	// it must finish (exit 0). Either way no row is sent again.
	refused bool
	skip    string // why this option is not flipped here
}

// resumeFlips classifies every option apply reads. The key is "--flag",
// "$ENV" or "config:key". A new option fails TestResumeWithEachOptionFlipped
// until it is classified here.
func resumeFlips(fake *fakesynapse.Server, dir string) map[string]flip {
	ca := "/etc/ssl/certs/ca-certificates.crt"
	tok2 := filepath.Join(dir, "token2")
	_ = os.WriteFile(tok2, []byte(fake.Token+"\n"), 0o600)
	other := filepath.Join(dir, "other.yaml")
	_ = os.WriteFile(other, []byte("phone_region: US\n"), 0o600)
	pw := filepath.Join(dir, "passwords.txt")
	masSecret := filepath.Join(dir, "mas-secret")
	_ = os.WriteFile(masSecret, []byte("s3cret\n"), 0o600)
	masArgs := []string{"--mas-client-id", "01J0000000000000000000CL1", "--mas-client-secret-file", masSecret}
	return map[string]flip{
		// What gives the rows their meaning: refused when it changes a
		// finished row, a no-op for the rows it cannot change.
		"--action":               {args: []string{"--action", "lock"}, refused: true}, // carol has no action cell
		"--replace-lists":        {args: []string{"--replace-lists"}, refused: true},  // bob has msisdns
		"--match-by":             {args: []string{"--match-by", "email"}},             // no row has an email
		"--auth-provider":        {args: []string{"--auth-provider", "oidc"}},         // no row has external ids
		"--generate-passwords":   {args: []string{"--generate-passwords", "--passwords-out", pw}, refused: true},
		"--phone-region":         {args: []string{"--phone-region", "US"}, refused: true}, // bob's number is national
		"$SYNBATCH_PHONE_REGION": {env: map[string]string{"SYNBATCH_PHONE_REGION": "US"}, refused: true},
		"config:phone_region":    {conf: map[string]string{"phone_region": "DE"}, refused: true},
		"--map":                  {args: []string{"--map", "Display=displayname"}, refused: true}, // carol's Display cell now reads as a display name
		"config:map":             {conf: map[string]string{"map": "{Display: displayname}"}},      // the run's --ignore display beats the config's map of the same header
		"config:ignore":          {conf: map[string]string{"ignore": "[msisdns]"}, refused: true},
		"--action-value":         {args: []string{"--action-value", "reset-password=lock"}, refused: true},
		"config:action_values":   {conf: map[string]string{"action_values": "{reset-password: lock}"}, refused: true},
		"--ignore":               {args: []string{"--ignore", "msisdns"}, refused: true},
		"--sheet":                {args: []string{"--sheet", "Other"}, refused: true}, // a CSV has no sheets
		"--format":               {args: []string{"--format", "jsonl"}},               // read only with MANIFEST -
		"--server-name":          {args: []string{"--server-name", "other.test"}, refused: true},
		"$SYNBATCH_SERVER_NAME":  {env: map[string]string{"SYNBATCH_SERVER_NAME": "other.test"}, refused: true},
		"config:server_name":     {conf: map[string]string{"server_name": "other.test"}, refused: true},
		"config:homeserver":      {conf: map[string]string{"homeserver": "hs.test"}},
		// synadm's keys a shared synadm.yaml holds, read by nothing here.
		"config:user":        {conf: map[string]string{"user": "admin"}},
		"config:format":      {conf: map[string]string{"format": "json"}},
		"config:matrix_path": {conf: map[string]string{"matrix_path": "/_matrix"}},
		// Where and how to connect: the same server, reached another way.
		"--server":             {args: []string{"--server", fake.URL + "/"}}, // the same server with a trailing slash (journal.NormalServer)
		"$SYNBATCH_SERVER":     {env: map[string]string{"SYNBATCH_SERVER": fake.URL + "/"}},
		"config:server":        {conf: map[string]string{"server": fake.URL}},
		"config:base_url":      {conf: map[string]string{"base_url": fake.URL}},
		"--token-file":         {args: []string{"--token-file", tok2}},
		"$SYNBATCH_TOKEN_FILE": {env: map[string]string{"SYNBATCH_TOKEN_FILE": tok2}},
		"$SYNBATCH_TOKEN":      {env: map[string]string{"SYNBATCH_TOKEN": fake.Token}},
		"config:token":         {conf: map[string]string{"token": fake.Token}},
		"config:token_file":    {conf: map[string]string{"token_file": tok2}},
		"--config":             {args: []string{"--config", other}, refused: true}, // its phone_region is US
		"$SYNBATCH_CONFIG":     {env: map[string]string{"SYNBATCH_CONFIG": other}, refused: true},
		"--admin-path":         {args: []string{"--admin-path", "/_synapse/admin"}},
		"$SYNBATCH_ADMIN_PATH": {env: map[string]string{"SYNBATCH_ADMIN_PATH": "/_synapse/admin"}},
		"config:admin_path":    {conf: map[string]string{"admin_path": "/_synapse/admin"}},
		"--ca-file":            {args: []string{"--ca-file", ca}},
		"$SYNBATCH_CA_FILE":    {env: map[string]string{"SYNBATCH_CA_FILE": ca}},
		"config:ca_file":       {conf: map[string]string{"ca_file": ca}},
		"--insecure":           {args: []string{"--insecure"}},
		"config:ssl_verify":    {conf: map[string]string{"ssl_verify": "false"}},
		"--timeout":            {args: []string{"--timeout", "7s"}},
		"$SYNBATCH_TIMEOUT":    {env: map[string]string{"SYNBATCH_TIMEOUT": "7s"}},
		"config:timeout":       {conf: map[string]string{"timeout": "7"}},
		"--verbose":            {args: []string{"-v"}},
		"--output":             {args: []string{"-o", "json"}},
		"$SYNBATCH_OUTPUT":     {env: map[string]string{"SYNBATCH_OUTPUT": "json"}},
		// A MAS admin client: read only where the server delegates its
		// accounts to MAS, which this one does not.
		"--mas-client-id":                  {args: masArgs},
		"--mas-client-secret-file":         {args: masArgs},
		"--mas-url":                        {args: []string{"--mas-url", "https://mas.invalid/"}},
		"$SYNBATCH_MAS_CLIENT_ID":          {env: map[string]string{"SYNBATCH_MAS_CLIENT_ID": "01J0000000000000000000CL1", "SYNBATCH_MAS_CLIENT_SECRET_FILE": masSecret}},
		"$SYNBATCH_MAS_CLIENT_SECRET_FILE": {env: map[string]string{"SYNBATCH_MAS_CLIENT_ID": "01J0000000000000000000CL1", "SYNBATCH_MAS_CLIENT_SECRET_FILE": masSecret}},
		"$SYNBATCH_MAS_URL":                {env: map[string]string{"SYNBATCH_MAS_URL": "https://mas.invalid/"}},
		"config:mas_client_id":             {conf: map[string]string{"mas_client_id": "01J0000000000000000000CL1", "mas_client_secret_file": masSecret}},
		"config:mas_client_secret_file":    {conf: map[string]string{"mas_client_id": "01J0000000000000000000CL1", "mas_client_secret_file": masSecret}},
		"config:mas_url":                   {conf: map[string]string{"mas_url": "https://mas.invalid/"}},
		// How the run goes: never what a row means.
		"--concurrency":            {args: []string{"-j", "2"}},
		"--max-concurrency":        {args: []string{"--max-concurrency", "2"}},
		"--rate":                   {args: []string{"--rate", "1000"}},
		"--retries":                {args: []string{"--retries", "1"}},
		"--on-exists":              {args: []string{"--on-exists", "update"}},
		"--inactive-days":          {args: []string{"--inactive-days", "3"}},
		"--task-timeout":           {args: []string{"--task-timeout", "1m"}},
		"--shard":                  {args: []string{"--shard", "1/2"}},
		"$SYNBATCH_SHARD":          {env: map[string]string{"SYNBATCH_SHARD": "0/2"}},
		"--shards":                 {args: []string{"--shards", "2"}, env: map[string]string{"JOB_COMPLETION_INDEX": "1"}},
		"$SYNBATCH_SHARDS":         {env: map[string]string{"SYNBATCH_SHARDS": "2", "JOB_COMPLETION_INDEX": "0"}},
		"$JOB_COMPLETION_INDEX":    {env: map[string]string{"JOB_COMPLETION_INDEX": "1"}},
		"--rows":                   {args: []string{"--rows", "2-3"}},
		"--allow-unknown-provider": {args: []string{"--allow-unknown-provider"}},
		"--passwords-out":          {args: []string{"--passwords-out", pw}},
		"--tokens-out":             {args: []string{"--tokens-out", filepath.Join(dir, "tokens.csv")}},
		"--sync":                   {args: []string{"--sync", "deactivate", "--sync-scope", `@.*:hs\.test`}}, // every account on the server has a row
		"--sync-scope":             {args: []string{"--sync-scope", `@.*:hs\.test`}, refused: true},          // without --sync
		"--sync-max":               {args: []string{"--sync-max", "1"}, refused: true},                       // without --sync
		"--yes":                    {args: []string{"--yes=false"}, refused: true},                           // reset-password needs a terminal or --yes
		"--list":                   {args: []string{"-l"}},
		"--resend-uncertain":       {args: []string{"--resend-uncertain"}},
		"--allow-changed":          {args: []string{"--allow-changed"}},
		"--dry-run":                {args: []string{"--dry-run"}},
		"--down-limit":             {args: []string{"--down-limit", "1m"}},
		"--journal":                {skip: "another journal is another run: it knows no finished row, by design"},
		"--help":                   {skip: "prints help"},
		"$GOMEMLIMIT":              {skip: "the Go runtime's memory limit"},
	}
}

// appliedOptions lists every option apply reads: its flags, their
// environment variables, the variables the code reads itself, and the
// config file's keys.
func appliedOptions(t *testing.T) []string {
	var out []string
	for _, f := range applyCommand(context.Background(), context.Background(), nil, io.Discard, io.Discard).Flags {
		out = append(out, "--"+f.Names()[0])
		if d, ok := f.(cli.DocGenerationFlag); ok {
			for _, e := range d.GetEnvVars() {
				out = append(out, "$"+e)
			}
		}
	}
	out = append(out, "--help")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("([A-Z_0-9]+)"\)`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, "$"+m[1])
		}
	}
	ft := reflect.TypeFor[fileConfig]()
	for i := range ft.NumField() {
		if k, _, _ := strings.Cut(ft.Field(i).Tag.Get("yaml"), ","); k != "" {
			out = append(out, "config:"+k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestResumeWithEachOptionFlipped resumes a journal whose every row is
// finished (a reset-password, an upsert with a national phone number, a row
// that takes the default action) with each option apply reads set another
// way, one at a time: the resume either finishes or is refused, and in no
// case sends a write (counted at the fake).
func TestResumeWithEachOptionFlipped(t *testing.T) {
	clearSynbatchEnv(t)
	probe := fakesynapse.New("hs.test")
	flips := resumeFlips(probe, t.TempDir())
	probe.Close()
	for _, name := range appliedOptions(t) {
		if _, ok := flips[name]; !ok {
			t.Errorf("option %s is not classified in resumeFlips: say whether it changes what a finished row means", name)
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range flips {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Run(strings.TrimLeft(name, "-$"), func(t *testing.T) {
			fake := fakesynapse.New("hs.test")
			defer fake.Close()
			dir := t.TempDir()
			fl := resumeFlips(fake, dir)[name]
			if fl.skip != "" {
				t.Skip(fl.skip)
			}
			var writes atomic.Int64
			fake.Fault = func(_ http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet {
					writes.Add(1)
				}
				return false
			}
			fake.Put(fakesynapse.User{Name: "@alice:hs.test", Password: "old"})
			manifest := filepath.Join(dir, "users.csv")
			mustWrite(t, manifest, "user_id,action,password,msisdns,display\n"+
				"alice,reset-password,Fresh-pass-alice-1,,\n"+
				"bob,upsert,,07700 900123,\n"+
				"carol,,,,Carol\n")
			t.Setenv("HOME", dir)
			t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
			t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, ".cache"))
			tok := filepath.Join(dir, "token")
			mustWrite(t, tok, fake.Token+"\n")
			t.Setenv("SYNBATCH_SERVER", fake.URL)
			t.Setenv("SYNBATCH_TOKEN_FILE", tok)
			conf := "phone_region: GB\n"
			writeConf := func(extra map[string]string) {
				c := conf
				for k, v := range extra {
					c += k + ": " + v + "\n"
				}
				mustWrite(t, filepath.Join(dir, ".config", "synbatch.yaml"), c)
			}
			writeConf(nil)
			jpath := filepath.Join(dir, "j.jsonl")
			base := []string{"synbatch", "apply", manifest, "--journal", jpath, "--yes", "--ignore", "display"}
			var out, errb bytes.Buffer
			if code := run(base, strings.NewReader(""), &out, &errb); code != 0 {
				t.Fatalf("first run: exit %d\n%s%s", code, out.String(), errb.String())
			}
			if writes.Load() == 0 || fake.User("@alice:hs.test").PasswordSets != 1 {
				t.Fatalf("first run sent %d writes, alice's password set %d times", writes.Load(), fake.User("@alice:hs.test").PasswordSets)
			}
			writes.Store(0)
			for k, v := range fl.env {
				t.Setenv(k, v)
			}
			writeConf(fl.conf)
			args := append(slices.Clone(base), fl.args...)
			out.Reset()
			errb.Reset()
			code := run(args, strings.NewReader(""), &out, &errb)
			if n := writes.Load(); n != 0 {
				t.Errorf("resume sent %d writes (exit %d); a finished row was sent again\n%s%s", n, code, out.String(), errb.String())
			}
			if got := fake.User("@alice:hs.test").PasswordSets; got != 1 {
				t.Errorf("alice's password was set %d times", got)
			}
			switch {
			case fl.refused && code != exitUsage:
				t.Errorf("resume: exit %d, want %d (refused before any write)\n%s%s", code, exitUsage, out.String(), errb.String())
			case !fl.refused && code != 0:
				t.Errorf("resume: exit %d, want 0\n%s%s", code, out.String(), errb.String())
			}
		})
	}
}

// clearSynbatchEnv unsets every SYNBATCH_* variable the test inherited (and
// restores it after).
func clearSynbatchEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SYNBATCH_") || k == "JOB_COMPLETION_INDEX" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
