package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
)

// bcryptCost is the CPU time of one hash, with Synapse's own bcrypt module
// (in the chroot scripts/synapse built), at the test servers' 4 rounds and
// at the default 12.
type bcryptCost struct{ r4, r12 float64 }

const bcryptPy = `
import bcrypt, time
def cost(rounds, n):
    ts = []
    for _ in range(n):
        t = time.process_time()
        bcrypt.hashpw(b"a-password-of-a-new-user" + b"pepper", bcrypt.gensalt(rounds))
        ts.append(time.process_time() - t)
    ts.sort()
    return ts[len(ts) // 2]
print(cost(4, 31), cost(12, 7))
`

func measureBcrypt() (bcryptCost, error) {
	root := os.Getenv("SYNBATCH_SYNAPSE_CHROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "synbatch", "synapse-sid")
	}
	cmd := exec.Command("chroot", root, "python3", "-c", bcryptPy)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return bcryptCost{}, fmt.Errorf("chroot %s python3 (bcrypt): %w", root, err)
	}
	var c bcryptCost
	if _, err := fmt.Sscan(string(b), &c.r4, &c.r12); err != nil {
		return c, fmt.Errorf("bcrypt output %q: %w", b, err)
	}
	return c, nil
}

// writeScaling projects a 1,000,000-user onboarding on a production server
// from this run's per-user costs.
func writeScaling(out io.Writer, results []*synapseResult, bc bcryptCost) {
	var r *synapseResult
	for _, x := range results {
		if r == nil || x.db.name == "postgres" {
			r = x
		}
	}
	if r == nil {
		return
	}
	c := r.cpu
	// What the main process does per user besides hashing: the Python work
	// under the GIL (one core at most).
	mainPw := math.Max(c.synapseWithPassword-bc.r4, 0.0001)
	mainSSO := math.Max(c.synapseNoPassword, 0.0001)
	dbPw, dbSSO := c.dbWithPassword, c.dbNoPassword
	fmt.Fprintf(out, "## 6. Scaling on paper: 1,000,000 users on a production server\n\n")
	fmt.Fprintf(out, "A projection, not a measurement. It takes the per-user costs measured above on %s and asks which part of the server runs out first when one Synapse, with `bcrypt_rounds: 12` (Synapse's default), onboards a million users sent by one `synbatch apply`.\n\n", r.db.label)
	fmt.Fprintf(out, "Measured inputs (this machine's cores; a production core may be faster or slower, and every figure scales with it):\n\n")
	fmt.Fprintf(out, "- one bcrypt hash, Synapse's module: %s at 4 rounds, **%s at 12 rounds** (median CPU time, `python3 -c 'import bcrypt; …'` in the Synapse chroot);\n", ms(bc.r4), ms(bc.r12))
	fmt.Fprintf(out, "- the Synapse process, per create with password, email and external id, without the hash: **%s** of CPU (section 4, the default run: %s minus one 4-round hash);\n", ms(mainPw), ms(c.synapseWithPassword))
	if c.synapseNoPassword > 0 {
		fmt.Fprintf(out, "- the Synapse process, per create without a password (display name and email, as for SSO users): **%s**;\n", ms(mainSSO))
	}
	if r.db.name == "postgres" {
		fmt.Fprintf(out, "- PostgreSQL, per create: **%s** of CPU with a password, %s without.\n\n", ms(dbPw), ms(dbSSO))
	} else {
		fmt.Fprintf(out, "- the database: SQLite runs inside Synapse, so its cost is in the figures above (no PostgreSQL run in this benchmark).\n\n")
	}
	fmt.Fprintf(out, "The model. `PUT /_synapse/admin/v2/users/<id>` runs only on Synapse's main process (workers cannot take it). "+
		"That process does its Python work on one core (the GIL) and hashes passwords in its thread pool (Twisted's, at most 10 threads; bcrypt releases the GIL), "+
		"so with C cores: hashing gives at most min(C - 1, 10) / hash users/s, the main thread at most 1 / (its CPU per user), "+
		"and PostgreSQL on a host of its own with C cores at most C / (its CPU per user), before its disk: every create is a few committed transactions.\n\n")
	fmt.Fprintf(out, "| cores (Synapse host; PostgreSQL host the same) | bcrypt limit | main thread limit | PostgreSQL CPU limit | users/s | bottleneck | 1,000,000 users with passwords | without passwords (SSO) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, cores := range []int{4, 8, 16, 32} {
		hash := float64(min(cores-1, 10)) / bc.r12
		mainL := 1 / mainPw
		dbL := math.Inf(1)
		if dbPw > 0 {
			dbL = float64(cores) / dbPw
		}
		rate, what := hash, "bcrypt in the main process's thread pool"
		if mainL < rate {
			rate, what = mainL, "the main process's Python thread"
		}
		if dbL < rate {
			rate, what = dbL, "PostgreSQL's CPU"
		}
		ssoMain := 1 / mainSSO
		ssoDB := math.Inf(1)
		if dbSSO > 0 {
			ssoDB = float64(cores) / dbSSO
		}
		sso := math.Min(ssoMain, ssoDB)
		ssoWhat := "main thread"
		if ssoDB < ssoMain {
			ssoWhat = "PostgreSQL"
		}
		ssoCell := fmt.Sprintf("%s (%.0f/s, %s)", hours(1e6/sso), sso, ssoWhat)
		if c.synapseNoPassword == 0 {
			ssoCell = "not measured (run with synadm)"
		}
		fmt.Fprintf(out, "| %d | %.0f/s | %.0f/s | %s | %.0f | %s | %s | %s |\n",
			cores, hash, mainL, perS(dbL), rate, what, hours(1e6/rate), ssoCell)
	}
	fmt.Fprintf(out, "\nWhere the bottleneck moves:\n\n")
	fmt.Fprintf(out, "- **With passwords, bcrypt comes first.** At 12 rounds a hash costs %s, so each core hashes about %.1f users/s. Up to 11 cores, adding cores adds hashing; past that the 10-thread pool caps it at %.0f users/s, whatever the core count.\n", ms(bc.r12), 1/bc.r12, 10/bc.r12)
	fmt.Fprintf(out, "- **Then the main process.** Its Python work (%s per user here) runs on one core: %.0f users/s at most. With 10 hashing threads busy it becomes the limit where that is below %.0f/s; on a faster core both limits rise together. Lowering `bcrypt_rounds` for the import, or creating SSO users without passwords, moves the limit straight to it.\n", ms(mainPw), 1/mainPw, 10/bc.r12)
	if r.db.name == "postgres" && dbPw > 0 {
		fmt.Fprintf(out, "- **Then the database.** PostgreSQL spent %s of CPU per create here, %.1f%% of the main process's: it is not the limit while one main process writes. It becomes it through its disk (each create commits several transactions: fsync latency times the main process's database connections, `cp_max` 10) or when it is shared with a busy homeserver's normal traffic; on SQLite, one writer at a time, it comes much sooner, which is why Synapse recommends PostgreSQL for any real deployment.\n", ms(dbPw), 100*dbPw/mainPw)
	}
	fmt.Fprintf(out, "- **The client is not the limit.** One synbatch process keeps %d requests in flight by default (section 4); to hold R users/s it needs R x round-trip in flight: 40 users/s over a 100 ms round trip is 4.\n\n", max(r.defaultMax, 1))
	fmt.Fprintf(out, "When the Kubernetes shards of `docs/kubernetes.md` help, and when they cannot:\n\n")
	fmt.Fprintf(out, "- **They cannot make one Synapse faster.** Every shard's PUTs land on the same main process, in the same hash pool; N shards sharing one server share its %.0f users/s (at 16 cores), and each should run with `--rate R/N`.\n", math.Min(10/bc.r12, 1/mainPw))
	fmt.Fprintf(out, "- **They help with many homeservers** (one Job per server: the rates add up), with a manifest split between operators or time windows, and with surviving the loss of a machine (each shard resumes its own journal).\n")
	rate16 := math.Min(10/bc.r12, 1/mainPw)
	fmt.Fprintf(out, "- **They would help one server only if the client were the limit**: a round trip so long that one process's in-flight requests cannot keep the server busy. With the %d in flight the default reached here and %.0f users/s (16 cores), that takes a round trip over %.0f ms.\n\n", max(r.defaultMax, 1), rate16, 1000*float64(max(r.defaultMax, 1))/rate16)
}

func perS(v float64) string {
	if math.IsInf(v, 1) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f/s", v)
}

func hours(s float64) string {
	if s < 3600 {
		return fmt.Sprintf("%.0f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}
