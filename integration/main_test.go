// Package integration runs the synbatch binary against a real Synapse.
//
// `make test` starts one with scripts/synapse and sets
// SYNBATCH_REQUIRE_SYNAPSE=1, so that a missing server fails the tier
// instead of skipping it: CI must never pass without having talked to Synapse.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// env is the real server the tests use.
type env struct {
	server, tokenFile, serverName string
	bin                           string
	client                        *synapse.Client
}

var (
	// theEnv is set once by TestMain before any test runs and only read after.
	theEnv *env
	// skipReason is set when no server is configured and none is required.
	skipReason string
)

func TestMain(m *testing.M) {
	e, err := setup()
	if err != nil {
		if os.Getenv("SYNBATCH_REQUIRE_SYNAPSE") == "1" {
			fmt.Fprintf(os.Stderr, "integration: a real Synapse is required (SYNBATCH_REQUIRE_SYNAPSE=1) but: %v\n", err)
			os.Exit(1)
		}
		skipReason = err.Error()
	}
	theEnv = e
	code := m.Run()
	if e != nil {
		os.RemoveAll(filepath.Dir(e.bin))
	}
	os.Exit(code)
}

func setup() (*env, error) {
	vals := map[string]string{}
	for _, k := range []string{"SYNBATCH_SERVER", "SYNBATCH_TOKEN_FILE", "SYNBATCH_SERVER_NAME"} {
		vals[k] = os.Getenv(k)
	}
	if vals["SYNBATCH_SERVER"] == "" {
		// What scripts/synapse up leaves behind.
		f, err := os.Open(filepath.Join("..", ".synapse", "env"))
		if err != nil {
			return nil, fmt.Errorf("no SYNBATCH_SERVER and no ../.synapse/env (run scripts/synapse up): %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				vals[k] = strings.Trim(v, `"'`)
			}
		}
	}
	e := &env{server: vals["SYNBATCH_SERVER"], tokenFile: vals["SYNBATCH_TOKEN_FILE"], serverName: vals["SYNBATCH_SERVER_NAME"]}
	tok, err := os.ReadFile(e.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	// The tests' own client sets up and reads back; it does not retry a
	// timeout as synbatch does, so it waits longer than synbatch's 60 s for
	// a Synapse that four tiers share on two cores.
	e.client, err = synapse.New(synapse.Config{Server: e.server, Token: strings.TrimSpace(string(tok)), Timeout: 3 * time.Minute})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ver, err := e.client.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("server %s does not answer: %w", e.server, err)
	}
	fmt.Fprintf(os.Stderr, "integration: real Synapse %s at %s\n", ver, e.server)
	dir, err := os.MkdirTemp("", "synbatch-bin")
	if err != nil {
		return nil, err
	}
	e.bin = filepath.Join(dir, "synbatch")
	build := exec.Command("go", "build", "-o", e.bin, "..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build synbatch: %w", err)
	}
	return e, nil
}

func realServer(t *testing.T) *env {
	t.Helper()
	if theEnv == nil {
		t.Skipf("no real Synapse: %s", skipReason)
	}
	return theEnv
}

// uniq is a prefix that keeps this run's users apart from earlier runs' on
// the same server.
func uniq(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

type result struct {
	stdout, stderr string
	code           int
}

// synbatch runs the binary as an admin would, with the server in the environment.
func (e *env) synbatch(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return e.synbatchVia(t, dir, e.server, args...)
}

// synbatchVia runs the binary against server (a proxy in front of the real
// one, say).
func (e *env) synbatchVia(t *testing.T, dir, server string, args ...string) result {
	t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = dir
	cmd.Env = e.binEnv(dir, server)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run synbatch: %v", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// ownClient is a client of the test's own on the real server, for a test
// that counts its requests (e.client is shared by the parallel tests).
func (e *env) ownClient(t *testing.T) *synapse.Client {
	t.Helper()
	tok, err := os.ReadFile(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := synapse.New(synapse.Config{Server: e.server, Token: strings.TrimSpace(string(tok)), Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// binEnv is the environment synbatch runs in: the caller's, less every
// SYNBATCH_ setting and config directory of whoever runs the tests, with
// dir as HOME and the given server.
func (e *env) binEnv(dir, server string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SYNBATCH_") || name == "HOME" || name == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "SYNBATCH_SERVER="+server, "SYNBATCH_TOKEN_FILE="+e.tokenFile,
		"SYNBATCH_SERVER_NAME="+e.serverName, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
}

// applyJSON runs apply with --output json and decodes the stats.
func (e *env) applyJSON(t *testing.T, dir string, wantCode int, args ...string) stats {
	t.Helper()
	r := e.synbatch(t, dir, append([]string{"apply", "--output", "json"}, args...)...)
	if r.code != wantCode {
		t.Fatalf("synbatch apply %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, wantCode, r.stdout, r.stderr)
	}
	var s stats
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("apply output is not JSON: %v\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return s
}

type stats struct {
	Rows     int            `json:"rows"`
	Resumed  int            `json:"resumed"`
	Outcomes map[string]int `json:"outcomes"`
	NotDone  int            `json:"not_done"`
	Writes   int64          `json:"writes"`
	Journal  string         `json:"journal"`
}

func (e *env) user(t *testing.T, id string) *synapse.User {
	t.Helper()
	u, err := e.client.GetUser(context.Background(), id)
	if synapse.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return u
}

func (e *env) id(local string) string { return "@" + local + ":" + e.serverName }

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
