package journal

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// LockUsers takes this run's hold on the users (and rooms and tokens) it
// may write on server: ids are hashes of the rows' identities. Two runs
// against one server whose rows name a same user exclude each other,
// whatever their files, so that an edited copy of a sheet applied beside
// the original is refused instead of racing it (the manifest lock sees
// only identical bytes). Runs with no user in common, such as the shards
// of one manifest, go on at once.
//
// Each run keeps a file of its own in the server's directory, flocked for
// the run's life and holding its ids: a killed run's lock goes with its
// process (its file is then only a leftover, removed by the next run). A
// gate lock makes looking at the others and adding oneself one step.
func LockUsers(dir, server string, ids []uint64, journalPath string) (*RunLock, error) {
	sum := sha256.Sum256([]byte(NormalServer(server)))
	sdir := filepath.Join(dir, "users-"+hex.EncodeToString(sum[:16]))
	// The server's directory is made, or reused, only as a real folder: a
	// link planted at its predictable name would have the gate and run
	// files written wherever it points.
	if err := nofollow.MkdirAll(sdir, 0o700); err != nil {
		if errors.Is(err, nofollow.ErrLink) || errors.Is(err, nofollow.ErrNotRegular) {
			return nil, fmt.Errorf("%w: run lock: %w", ErrForeign, err)
		}
		return nil, fmt.Errorf("run lock: %w", err)
	}
	gate, err := takeGate(filepath.Join(sdir, "gate"))
	if err != nil {
		return nil, err
	}
	defer gate.Close() // closing releases the gate
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	entries, err := os.ReadDir(sdir)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".run") {
			continue
		}
		path := filepath.Join(sdir, e.Name())
		who, shared, err := overlap(path, ids)
		if err != nil {
			return nil, err
		}
		if shared > 0 {
			return nil, fmt.Errorf("%w: another run (%s) is writing %d of the same users to this server: wait for it to finish, or stop it; two runs writing one user at once race each other (lock %s)",
				ErrLocked, who, shared, path)
		}
	}
	abs, err := filepath.Abs(journalPath)
	if err != nil {
		abs = journalPath
	}
	host, _ := os.Hostname()
	me := fmt.Sprintf("synbatch pid %d on %s since %s, journal %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), abs)
	path := filepath.Join(sdir, fmt.Sprintf("%d-%d.run", os.Getpid(), time.Now().UnixNano()))
	f, err := openNoFollow(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, "run lock")
	if err != nil {
		return nil, err
	}
	if err := tryLock(f, lockExclusive); err != nil {
		f.Close()
		return nil, fmt.Errorf("run lock %s: %w", path, err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(me + "\n")
	var b [8]byte
	for _, id := range ids {
		binary.BigEndian.PutUint64(b[:], id)
		w.Write(b[:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("run lock %s: %w", path, err)
	}
	return &RunLock{files: []*os.File{f}, remove: path}, nil
}

// takeGate takes the exclusive gate lock, waiting while another run looks
// (a few milliseconds) up to ten seconds.
func takeGate(path string) (*os.File, error) {
	f, err := openNoFollow(path, os.O_CREATE|os.O_RDWR, "run lock")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if tryLock(f, lockExclusive) == nil {
			return f, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(wait)
	}
	f.Close()
	return nil, fmt.Errorf("%w: the run lock's gate %s stayed taken for ten seconds", ErrLocked, path)
}

// overlap reads the run file at path: who holds it and how many of ids it
// holds too ("" when no live run holds it: the file is a dead run's and is
// removed).
func overlap(path string, ids []uint64) (who string, shared int, _ error) {
	f, err := openNoFollow(path, os.O_RDWR, "run lock")
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if tryLock(f, lockShared) == nil {
		os.Remove(path) // its run is gone; only we look, under the gate
		return "", 0, nil
	}
	r := bufio.NewReader(f)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", 0, fmt.Errorf("run lock %s: %w", path, err)
	}
	who = strings.TrimSpace(line)
	var b [8]byte
	i := 0
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			break
		}
		id := binary.BigEndian.Uint64(b[:])
		for i < len(ids) && ids[i] < id {
			i++
		}
		if i < len(ids) && ids[i] == id {
			shared++
		}
	}
	return who, shared, nil
}
