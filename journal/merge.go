package journal

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// ErrMergeOutput is a merged journal's path that cannot be created: a file
// or a link is there already, or its folder is missing. Nothing was written.
var ErrMergeOutput = errors.New("merged journal")

// Merge writes the records of the journals at paths, one journal after the
// other, to a new journal at out (0600; a file or a link already there is
// refused). Each keeps its run headers, so the result reads as one journal
// of several runs, such as the shards of one manifest.
//
// The journals are read by Scan's rules: a journal's torn last line is left
// out, as every reader leaves it out (copied, it would sit in the middle of
// the merged journal as damage); damage is an error, and out is removed.
func Merge(out string, paths []string) (err error) {
	f, err := nofollow.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMergeOutput, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("merged journal: %w", cerr)
		}
		if err != nil {
			os.Remove(out) // ours: O_EXCL made it
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	for _, p := range paths {
		if err := mergeOne(w, p); err != nil {
			return fmt.Errorf("merge %s: %w", p, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("merged journal: %w", err)
	}
	return nil
}

// mergeOne copies the records of the journal at path to w, each checked as
// summary checks it.
func mergeOne(w *bufio.Writer, path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = Scan(in, path, func(line []byte) error {
		if _, err := decodeEntry(line); err != nil {
			return err
		}
		// A write error is kept by w and told by Flush: an error of fn's
		// would say the line is damaged.
		w.Write(line)
		w.WriteByte('\n')
		return nil
	})
	if err != nil {
		return err
	}
	return w.Flush()
}
