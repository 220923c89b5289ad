package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
)

// exportOptionsEnv clears every SYNBATCH_* variable and gives the test its
// own HOME, and returns a token file and a server that counts requests.
func exportOptionsEnv(t *testing.T) (tok string, srv *httptest.Server, requests *atomic.Int64) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SYNBATCH_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := hermetic(t)
	tok = filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("syt_admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int64)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	return tok, srv, requests
}

// parseExport runs the export subcommand named by args[0] with its own
// flags, its Action replaced by fill, which reads the options.
func parseExport(t *testing.T, args []string, fill func(c *cli.Context) error) {
	t.Helper()
	var sub *cli.Command
	for _, s := range exportCommand(context.Background(), context.Background(), io.Discard, io.Discard).Subcommands {
		if s.Name == args[0] {
			sub = s
		}
	}
	if sub == nil {
		t.Fatalf("no export %s", args[0])
	}
	sub.Action = fill
	app := &cli.App{Name: "synbatch", Commands: []*cli.Command{sub}, ExitErrHandler: func(*cli.Context, error) {}}
	if err := app.Run(append([]string{"synbatch"}, args...)); err != nil {
		t.Fatalf("export %s: %v", strings.Join(args, " "), err)
	}
}

// TestExportOptionsFromFlags: each export subcommand's options function
// reads every flag of the command into its options struct (the load flags
// into the connection's settings too), and sends nothing doing so.
func TestExportOptionsFromFlags(t *testing.T) {
	tok, srv, requests := exportOptionsEnv(t)
	conn := []string{"--server", srv.URL, "--token-file", tok, "-j", "3", "--max-concurrency", "7", "--rate", "2.5"}
	checkConn := func(t *testing.T, ec exportConn) {
		t.Helper()
		if ec.concurrency != 3 || ec.maxConcurrency != 7 {
			t.Errorf("concurrency %d, max %d; want 3, 7", ec.concurrency, ec.maxConcurrency)
		}
		if cfg := ec.conn.cfg; cfg.Server != srv.URL || cfg.Token != "syt_admin" || cfg.Rate != 2.5 || cfg.Burst != 3 || cfg.MaxConns != 3 {
			t.Errorf("connection settings %+v: want the server, its token, rate 2.5, burst and conns 3", cfg)
		}
	}

	t.Run("users", func(t *testing.T) {
		var o exportUsersOptions
		parseExport(t, append([]string{"users", "--out", "u.jsonl", "--output", "json", "--name", "al", "--user-id", ":hs",
			"--deactivated", "--no-guests", "--admins-only", "--user-type", "bot", "--user-type", "support"}, conn...),
			func(c *cli.Context) (err error) { o, err = exportUsersOptionsFrom(c, io.Discard); return err })
		checkConn(t, o.exportConn)
		f := o.filter
		if o.out != "u.jsonl" || !o.asJSON || f.Name != "al" || f.UserID != ":hs" || !f.Deactivated || !f.AdminsOnly ||
			f.Guests == nil || *f.Guests || !slices.Equal(f.UserTypes, []string{"bot", "support"}) {
			t.Errorf("options %+v, filter %+v: not what the flags say", o.tableOptions, f)
		}
	})
	t.Run("rooms", func(t *testing.T) {
		var o exportRoomsOptions
		parseExport(t, append([]string{"rooms", "--out", "-", "--format", "jsonl", "--search", "ops", "--members"}, conn...),
			func(c *cli.Context) (err error) { o, err = exportRoomsOptionsFrom(c, io.Discard); return err })
		checkConn(t, o.exportConn)
		if o.out != "-" || o.format != "jsonl" || o.asJSON || o.filter.Search != "ops" || !o.members {
			t.Errorf("options %+v: not what the flags say", o)
		}
	})
	t.Run("registration-tokens", func(t *testing.T) {
		var o tableOptions
		parseExport(t, append([]string{"registration-tokens", "--out", "t.csv"}, conn...),
			func(c *cli.Context) (err error) {
				o, err = tableOptionsFrom(c, io.Discard, "registration-tokens")
				return err
			})
		checkConn(t, o.exportConn)
		if o.out != "t.csv" || o.format != "csv" || o.asJSON {
			t.Errorf("options %+v: not what the flags say", o)
		}
	})
	t.Run("data", func(t *testing.T) {
		var o exportDataOptions
		parseExport(t, append([]string{"data", "--out", "d", "--users", "m.csv", "--sheet", "S", "--match-by", "email",
			"--media", "--archive", "--events=all", "--events-scan-rooms", "--events-page-size", "100", "--output", "json"}, append(conn, "@a:hs", "@b:hs")...),
			func(c *cli.Context) (err error) { o, err = exportDataOptionsFrom(c, io.Discard); return err })
		checkConn(t, o.exportConn)
		if o.out != "d" || !o.asJSON || !slices.Equal(o.args, []string{"@a:hs", "@b:hs"}) || o.usersFile != "m.csv" || o.sheet != "S" ||
			o.matchBy != "email" || !o.media || !o.archive || o.events != export.EventsAll || !o.scanRooms || o.eventsPageSize != 100 {
			t.Errorf("options %+v: not what the flags say", o)
		}
	})
	if n := requests.Load(); n != 0 {
		t.Errorf("reading the options sent %d requests, want none", n)
	}
}
