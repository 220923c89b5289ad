package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/pipeline"
)

// lockManifest takes the run lock of the manifest (its bytes, sum) against
// server, for its shard, or says who holds it (exit 2: nothing was sent).
// Where no lock can be kept at all (no writable cache directory, as in
// some containers) the run goes on with a warning, as it did before.
//
// It then takes the lock of the users (rooms, tokens) the run's rows name
// on server: a run of another file (an edited copy of the sheet) that
// names one of them is refused too, whatever its bytes. The users are
// those validation (ch) collected: the manifest is read again only when
// ch comes from a journal's record. extra are the jobs made outside the
// manifest (the accounts --sync closes): their users are held too, so a
// run that writes one of them waits for the run closing it.
func lockManifest(ctx context.Context, server, sum string, src pipeline.Source, ch *pipeline.Checked, extra []*jobs.Job, jpath string, stderr io.Writer) (release func(), err error) {
	l, err := lockRun(server, sum, src, jpath)
	switch {
	case errors.Is(err, journal.ErrLocked), errors.Is(err, journal.ErrForeign):
		return nil, err
	case err != nil:
		fmt.Fprintf(stderr, "synbatch: warning: %v: a second run of this manifest against this server would not be stopped\n", err)
		return func() {}, nil
	}
	ids, err := ch.TakeIdentities(ctx, src)
	if err != nil {
		l.Release()
		return nil, err
	}
	ids = append(ids, pipeline.JobIdentities(extra)...)
	dir, _ := journal.RunLockDir() // lockRun found it
	u, err := journal.LockUsers(dir, server, ids, jpath)
	switch {
	case errors.Is(err, journal.ErrLocked), errors.Is(err, journal.ErrForeign):
		l.Release()
		return nil, err
	case err != nil:
		fmt.Fprintf(stderr, "synbatch: warning: %v: a run of another file writing the same users would not be stopped\n", err)
		return l.Release, nil
	}
	return func() { u.Release(); l.Release() }, nil
}

func lockRun(server, sum string, src pipeline.Source, jpath string) (*journal.RunLock, error) {
	dir, err := journal.RunLockDir()
	if err != nil {
		return nil, err
	}
	return journal.LockRun(dir, server, sum, src.Shard, max(src.Shards, 1), jpath)
}
