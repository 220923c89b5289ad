package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// linkStep is one synbatch command of a scenario; the steps before it in
// its scenario make the state it runs in.
type linkStep struct {
	name string
	args []string
}

// recorded is a path a step wrote: made, created, appended to, renamed
// over or removed.
type recorded struct {
	rel  string // under the work folder
	dir  bool
	step int
}

// TestPlantedLinksAreRefusedAtEveryOutputPath is issue 19 class 3's
// acceptance. Each scenario runs once as an admin would, and every path it
// writes is recorded: the work folder is listed after each step and, where
// strace is installed, every file it creates, renames or removes (the
// staging files an export removes when it finishes) is read from strace's
// trace. No list of paths is written down here, so a new output path
// cannot be forgotten. Then, for each path, the steps before the one that
// wrote it are replayed in a fresh folder, a symbolic link to a folder or
// file outside is planted at the path, and the step is run again: it must
// fail saying "symbolic link", the link must still be there, and nothing
// outside the folder may have changed.
func TestPlantedLinksAreRefusedAtEveryOutputPath(t *testing.T) {
	e := realServer(t)
	t.Parallel()
	p := uniq(t)
	u := e.newDataUser(t, p+"links", true, 1)
	scenarios := map[string][]linkStep{
		"apply and journal": {
			{"apply", []string{"apply", "users.csv", "--passwords-out", "pw.csv", "--journal", "j.jsonl"}},
			{"journal report", []string{"journal", "report", "j.jsonl", "--out", "report.html"}},
			{"journal merge", []string{"journal", "merge", "j.jsonl", "--out", "merged.jsonl"}},
		},
		"export users":          {{"export users", []string{"export", "users", "--user-id", p, "--out", "users.csv"}}},
		"export rooms":          {{"export rooms", []string{"export", "rooms", "--search", p, "--out", "rooms.xlsx"}}},
		"export tokens":         {{"export tokens", []string{"export", "registration-tokens", "--out", "tokens.jsonl"}}},
		"export data":           {{"export data --events --media", []string{"export", "data", u.id, "--events=sent", "--media", "--out", "bundles"}}},
		"export data --archive": {{"export data --archive", []string{"export", "data", u.id, "--archive", "--out", "zips"}}},
	}
	inputs := map[string]string{
		"users.csv": "user_id,displayname,password\n" + p + "pw,Links,generate\n",
	}
	_, straced := exec.LookPath("strace")
	total := 0
	for name, steps := range scenarios {
		paths := recordPaths(t, e, steps, inputs, straced == nil)
		if len(paths) == 0 {
			t.Fatalf("%s: no path recorded", name)
		}
		for _, rp := range paths {
			total++
			t.Run(name+"/"+rp.rel, func(t *testing.T) {
				plantAndRun(t, e, steps, inputs, rp)
			})
		}
	}
	t.Logf("%d paths planted (strace: %v)", total, straced == nil)
}

// linkWork makes a fresh work folder (HOME, the cache and TMPDIR inside
// it) with the inputs, and a folder outside it holding a sentinel file.
func linkWork(t *testing.T, inputs map[string]string) (work, outside string) {
	root := t.TempDir()
	work, outside = filepath.Join(root, "work"), filepath.Join(root, "outside")
	for _, d := range []string{work, filepath.Join(work, "tmp"), outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for n, body := range inputs {
		writeFile(t, work, n, body)
	}
	writeFile(t, outside, "sentinel", "outside the output folder\n")
	return work, outside
}

// linkRun runs one step in work; with trace set, under strace writing to it.
func linkRun(t *testing.T, e *env, work string, args []string, trace string) result {
	t.Helper()
	bin := []string{e.bin}
	if trace != "" {
		bin = []string{"strace", "-f", "-qq", "-e", "trace=%file", "-o", trace, e.bin}
	}
	cmd := exec.Command(bin[0], append(bin[1:], args...)...)
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "XDG_CACHE_HOME=" + filepath.Join(work, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(work, ".config"), "TMPDIR=" + filepath.Join(work, "tmp"),
		"SYNBATCH_SERVER=" + e.server, "SYNBATCH_TOKEN_FILE=" + e.tokenFile, "SYNBATCH_SERVER_NAME=" + e.serverName}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// tree lists every path under dir (relative), with a hash of each file's
// bytes ("dir" for a folder, "-> target" for a link).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[rel] = "-> " + l
		case d.IsDir():
			m[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			m[rel] = hex.EncodeToString(s[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tempName is a name made by os.CreateTemp: random, so a link cannot be
// planted at it beforehand (and O_EXCL would refuse one).
var tempName = regexp.MustCompile(`\.tmp-?[0-9]+$|^synbatch-(export|stdin)-[0-9]+`)

// traced is what strace saw a command make (open with O_CREAT, mkdir,
// rename to, unlink): paths as given, relative ones to work.
var traced = regexp.MustCompile(`^\d+\s+(openat\(AT_FDCWD, "([^"]+)", [^)]*O_CREAT|mkdirat\(AT_FDCWD, "([^"]+)"|renameat2?\(AT_FDCWD, "[^"]+", AT_FDCWD, "([^"]+)"|unlinkat\(AT_FDCWD, "([^"]+)")`)

// recordPaths runs the steps in a fresh folder and returns each path they
// write that is not a random temporary name, with the step that first
// wrote it.
func recordPaths(t *testing.T, e *env, steps []linkStep, inputs map[string]string, strace bool) []recorded {
	t.Helper()
	work, _ := linkWork(t, inputs)
	seen := map[string]bool{}
	var out []recorded
	add := func(rel string, dir bool, step int) {
		if rel == "." || strings.HasPrefix(rel, "..") || rel == "tmp" || strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) ||
			inputs[rel] != "" || seen[rel] || tempName.MatchString(filepath.Base(rel)) {
			return
		}
		seen[rel] = true
		out = append(out, recorded{rel: rel, dir: dir, step: step})
	}
	for i, s := range steps {
		before := tree(t, work)
		trace := ""
		if strace {
			trace = filepath.Join(t.TempDir(), "trace")
		}
		r := linkRun(t, e, work, s.args, trace)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", s.name, r.code, r.stdout, r.stderr)
		}
		after := tree(t, work)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range after {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			if before[k] != after[k] {
				add(k, after[k] == "dir", i)
			}
		}
		if trace == "" {
			continue
		}
		f, err := os.Open(trace)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			m := traced.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			p := m[2] + m[3] + m[4] + m[5]
			if !filepath.IsAbs(p) {
				p = filepath.Join(work, p)
			}
			rel, err := filepath.Rel(work, p)
			if err != nil {
				continue
			}
			isDir := after[rel] == "dir" || m[3] != ""
			add(rel, isDir, i)
		}
		f.Close()
	}
	return out
}

// plantAndRun replays the steps before rp's, plants a link at rp.rel to
// the folder outside (for a folder) or its sentinel file (for a file), runs
// rp's step, and checks it refused and changed nothing outside.
func plantAndRun(t *testing.T, e *env, steps []linkStep, inputs map[string]string, rp recorded) {
	work, outside := linkWork(t, inputs)
	for _, s := range steps[:rp.step] {
		if r := linkRun(t, e, work, s.args, ""); r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", s.name, r.code, r.stdout, r.stderr)
		}
	}
	at := filepath.Join(work, rp.rel)
	if err := os.RemoveAll(at); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(at), 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(outside, "sentinel")
	if rp.dir {
		target = outside
	}
	if err := os.Symlink(target, at); err != nil {
		t.Fatal(err)
	}
	want := tree(t, outside)
	s := steps[rp.step]
	r := linkRun(t, e, work, s.args, "")
	// Refused: the message names the link. The exit code is not asked:
	// the run lock (under ~/.cache) is advisory, so a link there is a
	// warning and the run goes on without that lock.
	if out := r.stdout + r.stderr; !strings.Contains(out, "symbolic link") || !strings.Contains(out, filepath.Base(rp.rel)) {
		t.Errorf("%s with a link planted at %s: exit %d, want a refusal naming the link\nstdout:\n%s\nstderr:\n%s", s.name, rp.rel, r.code, r.stdout, r.stderr)
	}
	if r.code == 0 && !strings.Contains(r.stderr, "warning: run lock:") {
		t.Errorf("%s with a link planted at %s: exit 0", s.name, rp.rel)
	}
	if got := tree(t, outside); !mapsEqual(got, want) {
		t.Errorf("%s with a link planted at %s changed the folder outside: %v, was %v", s.name, rp.rel, got, want)
	}
	if l, err := os.Readlink(at); err != nil || l != target {
		t.Errorf("the link at %s is now %q (%v), want it left pointing at %s", rp.rel, l, err, target)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
