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
	"strings"
	"time"
)

// benchSynapse creates users with passwords, emails and external ids on the
// local Synapse (scripts/synapse up) at several concurrencies and with the
// default, and one process per user the way admins script a CLI today.
func benchSynapse(out io.Writer, dir, bin string, users int) error {
	envFile, err := os.ReadFile(filepath.Join(".synapse", "env"))
	if err != nil {
		return fmt.Errorf("no local Synapse (run scripts/synapse up): %w", err)
	}
	var env []string
	for _, l := range strings.Split(string(envFile), "\n") {
		if strings.Contains(l, "=") {
			env = append(env, l)
		}
	}
	env = append(env, "HOME="+dir)
	b := make([]byte, 3)
	rand.Read(b)
	run := "b" + hex.EncodeToString(b)
	manifest := func(name string, from, n int) (string, error) {
		p := filepath.Join(dir, name+".csv")
		f, err := os.Create(p)
		if err != nil {
			return "", err
		}
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, "user_id,password,emails,external_ids")
		for i := from; i < from+n; i++ {
			fmt.Fprintf(w, "%s-%d,pw-%s-%d-Xy9,%s-%d@bench.example.org,oidc:%s-%d\n", run, i, run, i, run, i, run, i)
		}
		w.Flush()
		return p, f.Close()
	}
	fmt.Fprintf(out, "## 4. Real Synapse\n\n`go run ./bench -only synapse -synapse-users %d`: %d new users per setting, each with a password, an email and an external id, on the local Synapse 1.160 (SQLite, `bcrypt_rounds: 4`; server and client share the 2 cores).\n\n", users, users)
	fmt.Fprintf(out, "| setting | users/s |\n| --- | --- |\n")
	next := 0
	for _, c := range []string{"1", "2", "4", "8", "16", "default"} {
		p, err := manifest("c"+c, next, users)
		if err != nil {
			return err
		}
		next += users
		args := []string{"apply", p, "--output", "json", "--journal", p + ".journal"}
		if c != "default" {
			args = append(args, "--concurrency", c)
		}
		m, err := runBin(bin, env, args...)
		if err != nil {
			return err
		}
		var st struct {
			RowsPerS float64        `json:"rows_per_second"`
			Outcomes map[string]int `json:"outcomes"`
			MaxLevel int            `json:"concurrency_max"`
		}
		if err := json.Unmarshal(m.stdout, &st); err != nil || st.Outcomes["done"] != users {
			return fmt.Errorf("concurrency %s: %v %s", c, err, m.stdout)
		}
		label := "--concurrency " + c
		if c == "default" {
			label = fmt.Sprintf("default (adaptive; reached %d in flight)", st.MaxLevel)
		}
		fmt.Fprintf(out, "| %s | %.1f |\n", label, st.RowsPerS)
	}
	// One process per user: what a shell loop around a CLI does.
	n := min(users, 40)
	start := time.Now()
	for i := range n {
		p, err := manifest(fmt.Sprintf("one-%d", i), next+i, 1)
		if err != nil {
			return err
		}
		if _, err := runBin(bin, env, "apply", p, "--journal", p+".journal"); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Fprintf(out, "| one `synbatch apply` process per user (%d users) | %.1f |\n\n", n, float64(n)/el.Seconds())
	return nil
}
