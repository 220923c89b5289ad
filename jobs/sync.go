package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// SyncActions are what --sync may do to an account the roster does not name.
var SyncActions = []Action{Deactivate, Lock, Suspend}

// SyncJob is the job that closes an account the roster does not name
// (--sync): it has no row (Row 0), and its key comes from the action and
// the user, so a resumed run finds it finished and closes each account
// once. why says why it was chosen; the plan and the journal keep it.
func SyncJob(a Action, userID, why string) (*Job, error) {
	s := lookup(a)
	if s == nil || !s.closes {
		return nil, fmt.Errorf("--sync %s: want one of deactivate, lock or suspend", a)
	}
	sum := sha256.Sum256([]byte("sync\x00" + string(a) + "\x00" + userID))
	j := &Job{Key: "sync-" + hex.EncodeToString(sum[:16]), UserID: userID, Action: a, spec: s, why: why}
	if a == Deactivate {
		j.payload = &deactivation{}
	}
	return j, nil
}

// Why says why a job was made by --sync ("" for a manifest's row).
func (j *Job) Why() string { return j.why }
