package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/synbatch/synbatch/internal/fakesynapse"
	"github.com/synbatch/synbatch/internal/testenv"
	"github.com/synbatch/synbatch/journal"
)

func TestMain(m *testing.M) {
	testscript.Main(testenv.Wrap(m), map[string]func(){"synbatch": main, "check-passwords": checkPasswords})
}

// TestScripts runs the command-line scripts in testdata/script. Each script
// gets a fresh fake Synapse (server name hs.test) in SYNBATCH_SERVER and an
// admin token file in SYNBATCH_TOKEN_FILE; `fakeuser` inspects its accounts.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			fake := fakesynapse.New("hs.test")
			env.Defer(fake.Close)
			env.Values["fake"] = fake
			env.Values["hold"] = &writeHold{arrived: make(chan struct{}), release: make(chan struct{})}
			tok := filepath.Join(env.WorkDir, ".token")
			if err := os.WriteFile(tok, []byte(fake.Token+"\n"), 0o600); err != nil {
				return err
			}
			env.Setenv("SYNBATCH_SERVER", fake.URL)
			env.Setenv("SYNBATCH_TOKEN_FILE", tok)
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// gen-synadm-config writes ~/.config/synadm.yaml for the fake,
			// the way synadm itself stores it.
			"gen-synadm-config": func(ts *testscript.TestScript, neg bool, args []string) {
				fake := ts.Value("fake").(*fakesynapse.Server)
				cfg := fmt.Sprintf("user: admin\ntoken: %s\nbase_url: %s\nadmin_path: /_synapse/admin\nmatrix_path: /_matrix\nssl_verify: true\ntimeout: 30\nformat: yaml\n", fake.Token, fake.URL)
				ts.Check(os.WriteFile(ts.MkAbs(".config/synadm.yaml"), []byte(cfg), 0o600))
			},
			// hold-journal PATH: a run holds the journal at PATH (its lock
			// taken) until the script ends.
			"hold-journal": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: hold-journal PATH")
				}
				w, err := journal.Create(ts.MkAbs(args[0]), journal.Header{Tool: "synbatch"})
				ts.Check(err)
				ts.Defer(func() { w.Close() })
			},
			// mkfifo PATH: a named pipe, which blocks whoever reads it.
			"mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: mkfifo PATH")
				}
				ts.Check(mkfifo(ts.MkAbs(args[0])))
			},
			// fake-hold-writes: the fake holds every write it gets until
			// fake-release-writes; fake-wait-write waits for the first one.
			"fake-hold-writes": func(ts *testscript.TestScript, neg bool, args []string) {
				fake, h := ts.Value("fake").(*fakesynapse.Server), ts.Value("hold").(*writeHold)
				var once sync.Once
				fake.Fault = func(_ http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodGet {
						once.Do(func() { close(h.arrived) })
						<-h.release
					}
					return false
				}
				ts.Defer(h.free)
			},
			"fake-wait-write": func(ts *testscript.TestScript, neg bool, args []string) {
				select {
				case <-ts.Value("hold").(*writeHold).arrived:
				case <-time.After(20 * time.Second):
					ts.Fatalf("no write came in 20 s")
				}
			},
			"fake-release-writes": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Value("hold").(*writeHold).free()
			},
			// fake-refuse-put ID: the fake refuses every PUT of account ID
			// with 400 M_USER_IN_USE, as Synapse refuses a name another
			// account holds in other letter case (after username_available
			// said yes: the other account came in between).
			"fake-refuse-put": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: fake-refuse-put ID")
				}
				path := "/_synapse/admin/v2/users/" + args[0]
				ts.Value("fake").(*fakesynapse.Server).Fault = func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodPut || r.URL.Path != path {
						return false
					}
					w.WriteHeader(http.StatusBadRequest)
					fmt.Fprint(w, `{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`)
					return true
				}
			},
			// fake-sso [ID]...: the fake's login flows list these SSO
			// providers; with none, no SSO flow at all.
			"fake-sso": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Value("fake").(*fakesynapse.Server).SSOProviders = args
			},
			// fake-login-flows-fail N [STATUS]: the fake answers its next N
			// requests for the login flows with a 502 (or STATUS, with
			// errcode M_UNRECOGNIZED: a server without the endpoint).
			"fake-login-flows-fail": func(ts *testscript.TestScript, neg bool, args []string) {
				n, err := strconv.Atoi(args[0])
				ts.Check(err)
				status := http.StatusBadGateway
				if len(args) > 1 {
					status, err = strconv.Atoi(args[1])
					ts.Check(err)
				}
				var left atomic.Int64
				left.Store(int64(n))
				ts.Value("fake").(*fakesynapse.Server).Fault = func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodGet || r.URL.Path != "/_matrix/client/v3/login" || left.Add(-1) < 0 {
						return false
					}
					w.WriteHeader(status)
					if status != http.StatusBadGateway {
						fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
					}
					return true
				}
			},
			// exits N COMMAND [ARG]...: run COMMAND and require exit code N
			// (exit codes are the interface scripts use).
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits N COMMAND [ARG]...")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: %v", err)
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("exits: %v", err)
				}
				if got != want {
					ts.Fatalf("exit code %d, want %d", got, want)
				}
			},
			// fakeuser ID [FIELD VALUE]...: the account exists (or, negated,
			// does not) and has these fields.
			"fakeuser": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 1 || len(args)%2 != 1 {
					ts.Fatalf("usage: fakeuser ID [FIELD VALUE]...")
				}
				fake := ts.Value("fake").(*fakesynapse.Server)
				u := fake.User(args[0])
				if neg {
					if u != nil {
						ts.Fatalf("%s exists", args[0])
					}
					return
				}
				if u == nil {
					ts.Fatalf("%s does not exist", args[0])
				}
				for i := 1; i < len(args); i += 2 {
					var got string
					switch args[i] {
					case "displayname":
						got = u.Displayname
					case "password":
						got = u.Password
					case "password_sets":
						got = fmt.Sprint(u.PasswordSets)
					case "admin":
						got = fmt.Sprint(u.Admin)
					case "threepids":
						var s []string
						for _, t := range u.Threepids {
							s = append(s, t[0]+":"+t[1])
						}
						got = strings.Join(s, ";")
					case "external_ids":
						var s []string
						for _, x := range u.ExternalIDs {
							s = append(s, x[0]+":"+x[1])
						}
						got = strings.Join(s, ";")
					default:
						ts.Fatalf("fakeuser: unknown field %s", args[i])
					}
					if got != args[i+1] {
						ts.Fatalf("%s %s = %q, want %q", args[0], args[i], got, args[i+1])
					}
				}
			},
		},
	})
}

// writeHold is a script's fake holding writes back.
type writeHold struct {
	arrived, release chan struct{}
	once             sync.Once
}

func (h *writeHold) free() { h.once.Do(func() { close(h.release) }) }

// checkPasswords FILE USER JOURNAL... is a script command: FILE is 0600, its
// last line for USER holds a password, and no JOURNAL (nor anything else
// named) contains it.
func checkPasswords() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: check-passwords FILE USER [FILE]...")
		os.Exit(2)
	}
	fi, err := os.Stat(os.Args[1])
	if err != nil || fi.Mode().Perm() != 0o600 {
		fmt.Fprintf(os.Stderr, "passwords file: %v, mode %v\n", err, fi.Mode())
		os.Exit(1)
	}
	b, _ := os.ReadFile(os.Args[1])
	pw := ""
	for _, line := range strings.Split(string(b), "\n") {
		if u, p, ok := strings.Cut(line, ","); ok && u == os.Args[2] {
			pw = p
		}
	}
	if len(pw) < 16 {
		fmt.Fprintf(os.Stderr, "no strong password for %s in %q\n", os.Args[2], b)
		os.Exit(1)
	}
	for _, f := range os.Args[3:] {
		other, _ := os.ReadFile(f)
		if strings.Contains(string(other), pw) {
			fmt.Fprintf(os.Stderr, "%s holds the password\n", f)
			os.Exit(1)
		}
	}
}
