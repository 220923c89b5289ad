package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// rates of one comparison: users per second each way.
type threeWays struct{ loop, xargs, synbatch float64 }

type synadmResult struct {
	create, update threeWays
	listSynadm     time.Duration // synadm user list, one request for every user
	detailsSynadm  time.Duration // synadm user details per user, scaled from the sample
	exportSynbatch time.Duration // synbatch export users
}

// The shell commands, as an admin would type them. CFG is synadm's config
// (scripts/synapse synadm writes it), users.csv holds user,password,display
// name,email lines, SRV the server name.
const (
	synadmLoopCreate  = `while IFS=, read -r u pw dn em; do synadm -c "$CFG" --batch user modify "@$u:$SRV" -P "$pw" -n "$dn" -t email "$em" >/dev/null || exit 1; done < users.csv`
	synadmXargsCreate = `tr , '\n' < users.csv | xargs -d '\n' -n 4 -P 8 sh -c 'synadm -c "$CFG" --batch user modify "@$0:$SRV" -P "$1" -n "$2" -t email "$3" >/dev/null'`
	synadmLoopUpdate  = `while IFS=, read -r u pw dn em; do synadm -c "$CFG" --batch user modify "@$u:$SRV" -n "Renamed $dn" >/dev/null || exit 1; done < users.csv`
	synadmXargsUpdate = `cut -d, -f1,3 users.csv | tr , '\n' | xargs -d '\n' -n 2 -P 8 sh -c 'synadm -c "$CFG" --batch user modify "@$0:$SRV" -n "Renamed $1" >/dev/null'`
	synadmList        = `synadm -c "$CFG" user list -n "$PREFIX" -l "$N" >list.json`
	synadmDetails     = `while read -r u; do synadm -c "$CFG" --batch user details "@$u:$SRV" >/dev/null || exit 1; done < sample.txt`
)

func synadmConfig(db synapseDB) (string, error) {
	cmd := exec.Command("scripts/synapse", "--db", db.name, "synadm")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/synapse --db %s synadm: %w", db.name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// shell runs script with bash in dir, with vars in its environment.
func shell(dir, script string, vars ...string) (time.Duration, error) {
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), vars...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	if err != nil {
		e := errb.String()
		if len(e) > 2000 {
			e = e[len(e)-2000:]
		}
		return el, fmt.Errorf("%s: %w: %s", script, err, e)
	}
	return el, nil
}

// countUsers asks the Admin API how many users' ids or names contain prefix.
func countUsers(vals map[string]string, prefix string) (int, error) {
	tok, err := os.ReadFile(vals["SYNBATCH_TOKEN_FILE"])
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest("GET", vals["SYNBATCH_SERVER"]+"/_synapse/admin/v2/users?limit=1&name="+url.QueryEscape(prefix), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Total int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		return 0, fmt.Errorf("user list: HTTP %d %v", resp.StatusCode, err)
	}
	return v.Total, nil
}

// benchSynadm: synadm one process per user, synadm under xargs -P 8 and
// synbatch's default, for creates (password, display name, email) and an
// update (display name); then synadm user list against synbatch export users.
func benchSynadm(out io.Writer, dir, bin string, db synapseDB, env []string, vals map[string]string, procs *serverProcSet, o synapseOpts, cpu *cpuCosts) (*synadmResult, error) {
	cfg, err := synadmConfig(db)
	if err != nil {
		return nil, err
	}
	srv := vals["SYNBATCH_SERVER_NAME"]
	n := o.synadmUsers
	res := &synadmResult{}
	fmt.Fprintf(out, "### synadm against synbatch\n\n")
	fmt.Fprintf(out, "synadm %s from Debian 12's package (`apt-get install synadm`; `scripts/synapse --db %s synadm` installs it when missing and writes its config, `CFG` below). "+
		"Each way creates %d new users of its own, each with a password, a display name and an email, then renames them (display name only). "+
		"`users.csv` holds `user,password,display name,email` lines; synbatch gets the same users as a manifest (`user_id,password,displayname,emails`, then `user_id,displayname`) and runs with its defaults. "+
		"Timed from the first process started to the last one finished.\n\n", synadmVersion(), db.name, n)
	ways := []synadmWay{
		{"synadm, one process per user (a shell loop)", synadmLoopCreate, synadmLoopUpdate},
		{"synadm under `xargs -P 8`", synadmXargsCreate, synadmXargsUpdate},
		{"synbatch (default settings)", "synbatch apply users-manifest.csv", "synbatch apply rename-manifest.csv"},
	}
	var createRates, updateRates [3]float64
	for wi, w := range ways {
		wdir := filepath.Join(dir, fmt.Sprintf("%s-synadm-%d", db.name, wi))
		prefix := randomRun(fmt.Sprintf("s%d", wi))
		if err := writeSynadmInputs(wdir, prefix, n); err != nil {
			return nil, err
		}
		var ct, ut time.Duration
		if wi < 2 {
			ct, ut, err = w.timeShell(wdir, "CFG="+cfg, "SRV="+srv)
		} else {
			ct, ut, err = timeSynbatchWay(wdir, bin, env, n)
		}
		if err != nil {
			return nil, err
		}
		if got, err := countUsers(vals, prefix); err != nil || got != n {
			return nil, fmt.Errorf("%s: %d users with prefix %s on the server, want %d (%v)", w.name, got, prefix, n, err)
		}
		createRates[wi] = float64(n) / ct.Seconds()
		updateRates[wi] = float64(n) / ut.Seconds()
	}
	res.create = threeWays{createRates[0], createRates[1], createRates[2]}
	res.update = threeWays{updateRates[0], updateRates[1], updateRates[2]}
	fmt.Fprintf(out, "| way | creates: users/s | synbatch is | renames: users/s | synbatch is |\n| --- | --- | --- | --- | --- |\n")
	for wi, w := range ways {
		cr, ur := "", ""
		if wi < 2 {
			cr = fmt.Sprintf("**%.1fx** faster", createRates[2]/createRates[wi])
			ur = fmt.Sprintf("**%.1fx** faster", updateRates[2]/updateRates[wi])
		}
		fmt.Fprintf(out, "| %s | %.2f | %s | %.2f | %s |\n", w.name, createRates[wi], cr, updateRates[wi], ur)
	}
	fmt.Fprintf(out, "\nThe commands (bash, in a directory holding `users.csv`):\n\n```sh\n# creates\n%s\n%s\nsynbatch apply users-manifest.csv\n# renames\n%s\n%s\nsynbatch apply rename-manifest.csv\n```\n\n",
		synadmLoopCreate, synadmXargsCreate, synadmLoopUpdate, synadmXargsUpdate)
	if err := benchSynadmList(out, dir, bin, db, env, procs, o, cpu, res, "CFG="+cfg, "SRV="+srv); err != nil {
		return nil, err
	}
	return res, nil
}

// synadmWay is one way of creating and renaming the users: shell commands
// (for synadm) or a description (for synbatch, run by timeSynbatchWay).
type synadmWay struct {
	name, create, update string
}

// timeShell runs the way's create and then its update commands in wdir.
func (w synadmWay) timeShell(wdir string, vars ...string) (create, update time.Duration, err error) {
	if create, err = shell(wdir, w.create, vars...); err != nil {
		return 0, 0, err
	}
	update, err = shell(wdir, w.update, vars...)
	return create, update, err
}

// timeSynbatchWay times synbatch applying the create and then the rename
// manifest in wdir.
func timeSynbatchWay(wdir, bin string, env []string, n int) (create, update time.Duration, err error) {
	times := [2]time.Duration{}
	for i, name := range []string{"users-manifest.csv", "rename-manifest.csv"} {
		p := filepath.Join(wdir, name)
		start := time.Now()
		if _, err := applyJSON(bin, env, n, p, "--journal", p+".journal"); err != nil {
			return 0, 0, err
		}
		times[i] = time.Since(start)
	}
	return times[0], times[1], nil
}

// writeSynadmInputs writes n users named prefix-<i> into wdir: users.csv
// for synadm, and the same users as synbatch's create and rename
// manifests.
func writeSynadmInputs(wdir, prefix string, n int) error {
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return err
	}
	var lines, man, ren strings.Builder
	man.WriteString("user_id,password,displayname,emails\n")
	ren.WriteString("user_id,displayname\n")
	for i := range n {
		u := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Fprintf(&lines, "%s,pw-%s-Xy9,Bench User %d,%s@bench.example.org\n", u, u, i, u)
		fmt.Fprintf(&man, "%s,pw-%s-Xy9,Bench User %d,%s@bench.example.org\n", u, u, i, u)
		fmt.Fprintf(&ren, "%s,Renamed Bench User %d\n", u, i)
	}
	for name, s := range map[string]string{"users.csv": lines.String(), "users-manifest.csv": man.String(), "rename-manifest.csv": ren.String()} {
		if err := os.WriteFile(filepath.Join(wdir, name), []byte(s), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// benchSynadmList seeds o.listUsers users (display name and email, no
// password), then times synadm's user list and per-user details against
// synbatch's export users. vars are CFG and SRV for synadm.
func benchSynadmList(out io.Writer, dir, bin string, db synapseDB, env []string, procs *serverProcSet, o synapseOpts, cpu *cpuCosts, res *synadmResult, vars ...string) error {
	ldir := filepath.Join(dir, db.name+"-list")
	if err := os.MkdirAll(ldir, 0o700); err != nil {
		return err
	}
	prefix := randomRun("l")
	var man, sample strings.Builder
	man.WriteString("user_id,displayname,emails\n")
	for i := range o.listUsers {
		u := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Fprintf(&man, "%s,List User %d,%s@bench.example.org\n", u, i, u)
		if i < o.detailsSample {
			fmt.Fprintln(&sample, u)
		}
	}
	p := filepath.Join(ldir, "seed.csv")
	if err := os.WriteFile(p, []byte(man.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ldir, "sample.txt"), []byte(sample.String()), 0o600); err != nil {
		return err
	}
	before := procs.cpu()
	seed, err := applyJSON(bin, env, o.listUsers, p, "--journal", p+".journal")
	if err != nil {
		return fmt.Errorf("seeding the list: %w", err)
	}
	after := procs.cpu()
	cpu.synapseNoPassword = (after.synapse - before.synapse) / float64(o.listUsers)
	cpu.dbNoPassword = (after.db - before.db) / float64(o.listUsers)

	vars = append(vars, "PREFIX="+prefix, fmt.Sprintf("N=%d", o.listUsers))
	if err := timeSynadmList(ldir, o, res, vars...); err != nil {
		return err
	}
	exp := filepath.Join(ldir, "export.csv")
	m, err := runBin(bin, env, "export", "users", "--name", prefix, "--out", exp)
	if err != nil {
		return err
	}
	res.exportSynbatch = m.elapsed
	if rows, err := countLines(exp); err != nil || rows-1 != o.listUsers {
		return fmt.Errorf("export users wrote %d rows, want %d (%v)", rows-1, o.listUsers, err)
	}
	fmt.Fprintf(out, "The user list: %d users (created by synbatch at %.1f users/s, display name and email, no password), listed by a name filter that matches only them.\n\n", o.listUsers, seed.RowsPerS)
	fmt.Fprintf(out, "| command | gives | time |\n| --- | --- | --- |\n")
	fmt.Fprintf(out, "| `%s` | one page: id, display name, flags; no emails, no external ids | %.2fs |\n", synadmList, res.listSynadm.Seconds())
	fmt.Fprintf(out, "| `%s` (%d users timed, scaled to %d) | each user's emails and external ids too, as JSON | %.0fs |\n", synadmDetails, o.detailsSample, o.listUsers, res.detailsSynadm.Seconds())
	fmt.Fprintf(out, "| `synbatch export users --name \"$PREFIX\" --out users.csv` | a manifest with emails, msisdns and external ids that apply takes back | %.2fs |\n\n", res.exportSynbatch.Seconds())
	fmt.Fprintf(out, "synbatch's export takes %.1fx the time of synadm's one-request list, which leaves out the emails and external ids; it is %.0fx faster than getting them with synadm, one process per user.\n\n",
		res.exportSynbatch.Seconds()/res.listSynadm.Seconds(), res.detailsSynadm.Seconds()/res.exportSynbatch.Seconds())
	return nil
}

// timeSynadmList times synadm's one-request user list (checking it lists
// every seeded user) and its per-user details over the sample, scaled to
// all of them.
func timeSynadmList(ldir string, o synapseOpts, res *synadmResult, vars ...string) error {
	var err error
	if res.listSynadm, err = shell(ldir, synadmList, vars...); err != nil {
		return err
	}
	var lj struct {
		Users []json.RawMessage `json:"users"`
	}
	if b, err := os.ReadFile(filepath.Join(ldir, "list.json")); err != nil || json.Unmarshal(b, &lj) != nil || len(lj.Users) != o.listUsers {
		return fmt.Errorf("synadm user list gave %d users, want %d (%v)", len(lj.Users), o.listUsers, err)
	}
	d, err := shell(ldir, synadmDetails, vars...)
	if err != nil {
		return err
	}
	res.detailsSynadm = time.Duration(float64(d) * float64(o.listUsers) / float64(o.detailsSample))
	return nil
}

func synadmVersion() string {
	b, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "synadm").Output()
	if err != nil {
		return "(version unknown)"
	}
	return string(b)
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}
