package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// RunLock is held while a run applies one manifest to one server. Two
// runs of the same manifest with two journals would each send every row,
// and a password sent twice logs its user out twice; the journal's own
// lock cannot see that, the run lock can.
type RunLock struct {
	files []*os.File
	own   *os.File // the file that names this run, truncated on release
	// remove is a file of this run alone, removed on release.
	remove string
}

// RunLockDir is where run locks live: per user, so that no other user can
// take (or plant) them.
func RunLockDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("run lock: %w", err)
	}
	return filepath.Join(dir, "synbatch", "locks"), nil
}

// LockRun takes the lock of manifest (by the sha256 of its bytes, so a copy
// or another path to it is the same manifest) against server, for shard k
// of n (0 of 1 when not sharded). Shards of one manifest run at once; a
// run of the whole manifest excludes every shard of it, and each shard
// excludes itself. A run refused is told the other run's pid and journal.
func LockRun(dir, server, manifestSHA256 string, k, n int, journalPath string) (*RunLock, error) {
	if err := nofollow.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	sum := sha256.Sum256([]byte(NormalServer(server) + "\n" + manifestSHA256))
	base := filepath.Join(dir, hex.EncodeToString(sum[:16]))
	abs, err := filepath.Abs(journalPath)
	if err != nil {
		abs = journalPath
	}
	host, _ := os.Hostname()
	me := fmt.Sprintf("synbatch pid %d on %s since %s, journal %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), abs)
	l := &RunLock{}
	// The whole manifest: exclusive for a run of all of it, shared by shards.
	mode := lockExclusive
	if n > 1 {
		mode = lockShared
	}
	f, err := l.take(base+".lock", mode)
	if err != nil {
		return nil, err
	}
	l.own = f
	if n > 1 {
		l.own = nil
		if f, err = l.take(fmt.Sprintf("%s.shard-%d-of-%d.lock", base, k, n), lockExclusive); err != nil {
			l.Release()
			return nil, err
		}
		l.own = f
	}
	if err := l.own.Truncate(0); err == nil {
		_, _ = l.own.WriteAt([]byte(me+"\n"), 0) // only informative: the flock is the lock
	}
	return l, nil
}

func (l *RunLock) take(path string, mode int) (*os.File, error) {
	f, err := openNoFollow(path, os.O_CREATE|os.O_RDWR, "run lock")
	if err != nil {
		return nil, err
	}
	if err := tryLock(f, mode); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 1024))
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "shards of it"
		}
		return nil, fmt.Errorf("%w: another run (%s) is applying this manifest to this server: wait for it to finish, or stop it; two runs of one manifest would send every row twice (lock %s)",
			ErrLocked, who, path)
	}
	l.files = append(l.files, f)
	return f, nil
}

// Release lets another run of the manifest go. The files stay: removing a
// lock file lets two later runs lock two different files.
func (l *RunLock) Release() {
	if l.own != nil {
		_ = l.own.Truncate(0)
	}
	if l.remove != "" {
		_ = os.Remove(l.remove)
	}
	for _, f := range l.files {
		f.Close()
	}
	l.files, l.own = nil, nil
}

// NormalServer spells one server one way (for run locks and journal checks): scheme and host in lower case,
// no trailing slash.
func NormalServer(s string) string {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return s
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return u.String()
}
