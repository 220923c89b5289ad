package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// synapseDB is one local Synapse that scripts/synapse runs.
type synapseDB struct {
	name    string // sqlite or postgres: scripts/synapse --db NAME
	label   string // for the tables
	envFile string // what `scripts/synapse --db NAME up` writes
}

var synapseDBs = []synapseDB{
	{"sqlite", "SQLite", filepath.Join(".synapse", "env")},
	{"postgres", "PostgreSQL", filepath.Join(".synapse-pg", "env")},
}

// synapseResult is what one database's run measured, for the summary and
// the projection that follow the per-database sections.
type synapseResult struct {
	db         synapseDB
	sweep      map[string]float64 // setting -> users/s
	defaultMax int                // in flight the default reached
	best       string             // the best fixed setting
	synadm     *synadmResult
	cpu        cpuCosts
}

// cpuCosts are CPU seconds per user, measured on the server's processes
// while synbatch's default created users.
type cpuCosts struct {
	synapseWithPassword float64 // Synapse process, create with password, email, external id
	synapseNoPassword   float64 // Synapse process, create with display name and email only
	dbWithPassword      float64 // PostgreSQL processes (0 on SQLite: inside Synapse)
	dbNoPassword        float64
}

// benchSynapse runs the real-Synapse benchmarks on each database in dbs:
// the concurrency sweep, synadm against synbatch (creates, an update, the
// user list), and the CPU each user costs the server; then the summary
// against the goals and the projection to a million users.
func benchSynapse(out io.Writer, dir, bin string, o synapseOpts) error {
	var results []*synapseResult
	bcrypt, err := measureBcrypt()
	if err != nil {
		return fmt.Errorf("bcrypt cost: %w", err)
	}
	for i, name := range o.dbs {
		var db synapseDB
		for _, d := range synapseDBs {
			if d.name == name {
				db = d
			}
		}
		if db.name == "" {
			return fmt.Errorf("unknown database %q (sqlite, postgres)", name)
		}
		r, err := benchOneSynapse(out, dir, bin, db, i, o)
		if err != nil {
			return fmt.Errorf("%s: %w", db.label, err)
		}
		results = append(results, r)
	}
	writeSynapseSummary(out, results, o)
	writeScaling(out, results, bcrypt)
	return nil
}

type synapseOpts struct {
	dbs           []string
	users         int // per run of the sweep
	rounds        int // of the sweep
	synadmUsers   int // per way, synadm against synbatch
	listUsers     int // users in the list comparison
	detailsSample int // synadm user details processes timed, then scaled
	skipSynadm    bool
}

func loadEnv(path, home string) ([]string, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("no local Synapse (run scripts/synapse up): %w", err)
	}
	var env []string
	vals := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			v = strings.Trim(v, `"'`)
			env = append(env, k+"="+v)
			vals[k] = v
		}
	}
	return append(env, "HOME="+home), vals, nil
}

func randomRun(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

type applyStats struct {
	RowsPerS float64        `json:"rows_per_second"`
	Outcomes map[string]int `json:"outcomes"`
	MaxLevel int            `json:"concurrency_max"`
}

func applyJSON(bin string, env []string, want int, args ...string) (applyStats, error) {
	var st applyStats
	m, err := runBin(bin, env, append([]string{"apply", "--output", "json"}, args...)...)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(m.stdout, &st); err != nil || st.Outcomes["done"] != want {
		return st, fmt.Errorf("apply %v: want %d done: %v %s", args, want, err, m.stdout)
	}
	return st, nil
}

func benchOneSynapse(out io.Writer, dir, bin string, db synapseDB, idx int, o synapseOpts) (*synapseResult, error) {
	env, vals, err := loadEnv(db.envFile, dir)
	if err != nil {
		return nil, err
	}
	res := &synapseResult{db: db, sweep: map[string]float64{}}
	procs, err := waitServerProcs(db, vals["SYNBATCH_SERVER"])
	if err != nil {
		return nil, err
	}
	mf := benchManifests{dir: dir, db: db.name, run: randomRun("b")}
	sec := fmt.Sprintf("4%c", 'a'+idx)
	fmt.Fprintf(out, "## %s. Real Synapse on %s\n\n", sec, db.label)
	fmt.Fprintf(out, "Synapse 1.160 from Debian sid (`scripts/synapse --db %s up`, %s), `bcrypt_rounds: 4`; server, database and client share the machine's cores. Load average at the start of this section: %s.\n\n", db.name, dbDescription(db), loadAvg())
	next, err := sweepConcurrency(out, bin, env, db, o, procs, mf, res)
	if err != nil {
		return nil, err
	}
	// One synbatch process per user: what a shell loop around a CLI does.
	n := min(o.users, 40)
	start := time.Now()
	for i := range n {
		p, err := mf.write(fmt.Sprintf("one-%d", i), next+i, 1)
		if err != nil {
			return nil, err
		}
		if _, err := runBin(bin, env, "apply", p, "--journal", p+".journal"); err != nil {
			return nil, err
		}
	}
	el := time.Since(start)
	fmt.Fprintf(out, "One `synbatch apply` process per user (%d users, one after another): %.1f users/s.\n\n", n, float64(n)/el.Seconds())

	if !o.skipSynadm {
		res.synadm, err = benchSynadm(out, dir, bin, db, env, vals, procs, o, &res.cpu)
		if err != nil {
			return nil, fmt.Errorf("synadm: %w", err)
		}
	}
	writeUserCosts(out, db, res.cpu)
	return res, nil
}

// waitServerProcs finds the server's processes, waiting up to three
// minutes: other work on this machine may be restarting the server.
func waitServerProcs(db synapseDB, server string) (*serverProcSet, error) {
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		procs, err := serverProcs(db, server)
		if err == nil || time.Now().After(deadline) {
			return procs, err
		}
	}
}

// benchManifests writes the benchmark's manifests of new users, named for
// the run so that no two runs share a user.
type benchManifests struct {
	dir, db, run string
}

// write writes n users numbered from, each with a password, an email and an
// external id, to a manifest called name; it returns its path.
func (mf benchManifests) write(name string, from, n int) (string, error) {
	p := filepath.Join(mf.dir, mf.db+"-"+name+".csv")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "user_id,password,emails,external_ids")
	run := mf.run
	for i := from; i < from+n; i++ {
		fmt.Fprintf(w, "%s-%d,pw-%s-%d-Xy9,%s-%d@bench.example.org,oidc:%s-%d\n", run, i, run, i, run, i, run, i)
	}
	w.Flush()
	return p, f.Close()
}

// sweepConcurrency runs every concurrency setting once a round and writes
// the table of their median rates; it returns the number of users it made.
func sweepConcurrency(out io.Writer, bin string, env []string, db synapseDB, o synapseOpts, procs *serverProcSet, mf benchManifests, res *synapseResult) (int, error) {
	fmt.Fprintf(out, "### Concurrency\n\n`go run ./bench -only synapse -synapse-db %s -synapse-users %d -synapse-rounds %d`: %d new users per run, each with a password, an email and an external id; %d rounds, each running every setting once in turn, so that a slow spell of the shared machine falls on all settings alike. A setting's figure is the median of its rounds.\n\n",
		db.name, o.users, o.rounds, o.users, o.rounds)
	fmt.Fprintf(out, "| setting | users/s (median) | rounds |\n| --- | --- | --- |\n")
	settings := []string{"1", "2", "4", "8", "16", "default"}
	runs := map[string][]float64{}
	var cpuS, cpuDB float64
	next := 0
	for range o.rounds {
		for _, c := range settings {
			p, err := mf.write(fmt.Sprintf("c%s-%d", c, next), next, o.users)
			if err != nil {
				return next, err
			}
			next += o.users
			args := []string{p, "--journal", p + ".journal"}
			if c != "default" {
				args = append(args, "--concurrency", c)
			}
			before := procs.cpu()
			st, err := applyJSON(bin, env, o.users, args...)
			if err != nil {
				return next, fmt.Errorf("concurrency %s: %w", c, err)
			}
			after := procs.cpu()
			if c == "default" {
				res.defaultMax = max(res.defaultMax, st.MaxLevel)
				cpuS += after.synapse - before.synapse
				cpuDB += after.db - before.db
			}
			runs[c] = append(runs[c], st.RowsPerS)
		}
	}
	res.cpu.synapseWithPassword = cpuS / float64(o.users*o.rounds)
	res.cpu.dbWithPassword = cpuDB / float64(o.users*o.rounds)
	for _, c := range settings {
		res.sweep[c] = medianRate(runs[c])
		label := "--concurrency " + c
		if c == "default" {
			label = fmt.Sprintf("default (adaptive; reached %d in flight)", res.defaultMax)
		} else if res.best == "" || res.sweep[c] > res.sweep[res.best] {
			res.best = c
		}
		var rs []string
		for _, r := range runs[c] {
			rs = append(rs, fmt.Sprintf("%.1f", r))
		}
		fmt.Fprintf(out, "| %s | %.1f | %s |\n", label, res.sweep[c], strings.Join(rs, ", "))
	}
	gap := 1 - res.sweep["default"]/res.sweep[res.best]
	fmt.Fprintf(out, "\nThe default against the best fixed setting (--concurrency %s): %s.\n\n", res.best, underOver(gap))
	return next, nil
}

// writeUserCosts writes the table of the server's CPU time per created
// user.
func writeUserCosts(out io.Writer, db synapseDB, cpu cpuCosts) {
	fmt.Fprintf(out, "### What a user costs the server\n\nCPU time of the Synapse process")
	if db.name == "postgres" {
		fmt.Fprintf(out, " and of the PostgreSQL server's processes")
	}
	fmt.Fprintf(out, " (from /proc, utime + stime) while synbatch's default ran, divided by the users it created.\n\n")
	fmt.Fprintf(out, "| users created with | Synapse CPU per user | database CPU per user |\n| --- | --- | --- |\n")
	dbCPU := func(v float64) string {
		if db.name == "sqlite" {
			return "(SQLite runs inside Synapse)"
		}
		return ms(v)
	}
	fmt.Fprintf(out, "| password (bcrypt 4), email, external id | %s | %s |\n", ms(cpu.synapseWithPassword), dbCPU(cpu.dbWithPassword))
	if cpu.synapseNoPassword > 0 {
		fmt.Fprintf(out, "| display name and email, no password | %s | %s |\n", ms(cpu.synapseNoPassword), dbCPU(cpu.dbNoPassword))
	}
	fmt.Fprintln(out)
}

func dbDescription(db synapseDB) string {
	if db.name == "postgres" {
		return "PostgreSQL 15 from Debian 12's package, its own cluster on 127.0.0.1, default settings, reached over TCP"
	}
	return "SQLite, the file beside the server"
}

func underOver(gap float64) string {
	if gap <= 0 {
		return fmt.Sprintf("%.1f%% above it", -gap*100)
	}
	return fmt.Sprintf("%.1f%% under it", gap*100)
}

func ms(s float64) string { return fmt.Sprintf("%.1f ms", s*1000) }

// writeSynapseSummary prints the goals of issue 15 against this run.
func writeSynapseSummary(out io.Writer, results []*synapseResult, o synapseOpts) {
	fmt.Fprintf(out, "## 5. Summary against the goals (issue 15)\n\n")
	fmt.Fprintf(out, "| goal | database | measured | met? |\n| --- | --- | --- | --- |\n")
	for _, r := range results {
		gap := 1 - r.sweep["default"]/r.sweep[r.best]
		fmt.Fprintf(out, "| default concurrency within 10%% of the best fixed setting | %s | %.1f users/s against %.1f (--concurrency %s): %s | %s |\n",
			r.db.label, r.sweep["default"], r.sweep[r.best], r.best, underOver(gap), yesNo(gap <= 0.10))
	}
	for _, r := range results {
		if r.synadm == nil {
			continue
		}
		ratio := r.synadm.create.synbatch / r.synadm.create.loop
		fmt.Fprintf(out, "| at least 25x a synadm loop on creates | %s | %.1fx (%.1f against %.2f users/s; %.1fx synadm under xargs -P 8) | %s |\n",
			r.db.label, ratio, r.synadm.create.synbatch, r.synadm.create.loop, r.synadm.create.synbatch/r.synadm.create.xargs, yesNo(ratio >= 25))
	}
	fmt.Fprintln(out)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// ---------------------------------------------------------------------------
// processes of the server, for CPU time

type serverProcSet struct {
	synapsePID int
	pgPostmstr int // 0 on SQLite
}

type cpuSample struct{ synapse, db float64 }

// serverProcs finds the Synapse that listens on server's port (the process
// scripts/synapse started, whose command line names its instance dir) and,
// on PostgreSQL, the postmaster of scripts/synapse's cluster.
func serverProcs(db synapseDB, server string) (*serverProcSet, error) {
	port := server[strings.LastIndex(server, ":")+1:]
	want := "/var/lib/synbatch/" + port + "/homeserver.yaml"
	ents, _ := os.ReadDir("/proc")
	s := &serverProcSet{}
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(c, "synapse.app.homeserver") && strings.Contains(c, want) {
			s.synapsePID = pid
		}
	}
	if s.synapsePID == 0 {
		return nil, fmt.Errorf("no Synapse process with %s", want)
	}
	if db.name == "postgres" {
		pgdata := os.Getenv("SYNBATCH_SYNAPSE_PGDATA")
		if pgdata == "" {
			pgdata = "/var/lib/synbatch/postgres-18432"
		}
		b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL of scripts/synapse: %w", err)
		}
		fmt.Sscan(string(b), &s.pgPostmstr)
	}
	return s, nil
}

const clockTicks = 100 // USER_HZ on Linux

// procCPU returns utime+stime (and, with children, cutime+cstime) in seconds.
func procCPU(pid int, children bool) (float64, int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	// f[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17; ppid field 4.
	var ppid int
	var ut, st, cut, cst float64
	fmt.Sscan(f[1], &ppid)
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	fmt.Sscan(f[13], &cut)
	fmt.Sscan(f[14], &cst)
	t := ut + st
	if children {
		t += cut + cst
	}
	return t / clockTicks, ppid
}

func (s *serverProcSet) cpu() cpuSample {
	var c cpuSample
	c.synapse, _ = procCPU(s.synapsePID, false)
	if s.pgPostmstr == 0 {
		return c
	}
	// The postmaster (with the backends it has reaped) and its live children.
	c.db, _ = procCPU(s.pgPostmstr, true)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == s.pgPostmstr {
			continue
		}
		if t, ppid := procCPU(pid, true); ppid == s.pgPostmstr {
			c.db += t
		}
	}
	return c
}

func medianRate(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
