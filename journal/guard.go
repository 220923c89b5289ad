package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// Errors a caller maps to "usage problem, nothing sent" (exit 2): each is
// a journal that cannot be used as it stands, and a person must act.
var (
	// ErrForeign is a file at the journal path that synbatch did not write,
	// or a symbolic link there: it is never cut, moved or appended to.
	ErrForeign = errors.New("not a synbatch journal")
	// ErrDamaged is a record that is not what synbatch writes.
	ErrDamaged = errors.New("damaged journal")
	// ErrLocked is a journal (or a manifest) another run is working on.
	ErrLocked = errors.New("in use by another run")
)

// openNoFollow opens one of a journal's files (the journal, its .lock, its
// .torn). A symbolic link there is refused rather than followed: a run
// would otherwise cut and append to whatever it points at. O_NONBLOCK keeps
// a FIFO planted there from hanging the open; fstat then refuses it.
func openNoFollow(path string, flag int, what string) (*os.File, error) {
	f, err := nofollow.OpenFile(path, flag, 0o600)
	if errors.Is(err, nofollow.ErrLink) {
		return nil, fmt.Errorf("%w: %s %s is a symbolic link, which synbatch never follows there: give --journal the real path, or remove the link", ErrForeign, what, path)
	}
	if errors.Is(err, nofollow.ErrNotRegular) {
		return nil, fmt.Errorf("%w: %s %s is not a regular file", ErrForeign, what, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s %s is not a regular file (%s)", ErrForeign, what, path, fi.Mode().Type())
	}
	return f, nil
}

// runPrefix is how every journal begins: Writer writes the run header
// first, and Header's first field is its type.
const runPrefix = `{"type":"run"`

// checkIsJournal reads the first record of the open file at path, by the
// rules Scan reads it with: an empty file is a new journal, a first line
// torn by a kill is a journal's, and anything else must be a synbatch run
// header. It reads from offset 0 whatever f's own offset is. Create judges
// a file with it before writing there, without reading the whole journal.
func checkIsJournal(f *os.File, path string) error {
	var head [len(runPrefix)]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read journal: %w", err)
	}
	if n == 0 {
		return nil
	}
	if !bytes.HasPrefix([]byte(runPrefix), head[:n]) {
		return notJournal(path)
	}
	// It begins like a journal: the whole first line must be a run header.
	line, err := bufio.NewReader(io.NewSectionReader(f, 0, 1<<62)).ReadBytes('\n')
	switch {
	case err == io.EOF:
		return nil // a header torn by a kill: Load repairs it as any torn tail
	case err != nil:
		return fmt.Errorf("read journal: %w", err)
	}
	return checkHeader(path, line)
}

// checkHeader judges a journal's whole first line: synbatch's run header.
func checkHeader(path string, line []byte) error {
	var h struct{ Type, Tool string }
	if json.Unmarshal(line, &h) != nil || h.Type != "run" || (h.Tool != "" && h.Tool != "synbatch") {
		return notJournal(path)
	}
	return nil
}

func notJournal(path string) error {
	return fmt.Errorf("%w: %s does not begin with a synbatch run record, so synbatch did not write it and leaves it alone: give --journal a new path", ErrForeign, path)
}

// checkRecord refuses a decoded record that holds what Writer never writes:
// a byte flipped into valid JSON (done -> dOne) must not pass for a result.
func checkRecord(typ, key string, row int, o Outcome, task, tool string) error {
	switch typ {
	case "run":
		if tool != "" && tool != "synbatch" {
			return fmt.Errorf("run record of unknown tool %q", tool)
		}
		return nil
	case "end":
		return nil
	case "row":
		switch o {
		case Done, Unchanged, Skipped, Failed, Uncertain:
		default:
			return fmt.Errorf("unknown outcome %q", o)
		}
	case "begin":
	case "task":
		if task == "" {
			return errors.New("task record without a task id")
		}
	default:
		return fmt.Errorf("unknown record type %q", typ)
	}
	if row < 0 {
		return fmt.Errorf("row number %d", row)
	}
	if !validKey(key) {
		return fmt.Errorf("row key %q is not one synbatch writes", key)
	}
	return nil
}

// validKey is the alphabet of row keys: lower-case hex hashes (and the
// short lower-case names tests and old journals use).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// damaged is the error of a record that cannot be trusted, and so neither
// can the rest: it names the byte where the record starts, and its line.
func damaged(path string, line int, off int64, why error) error {
	return fmt.Errorf("%w %s: record at byte %d: %v (line %d); nothing was sent: keep the file for inspection and give --journal a new path (the rows it finished are then planned again)", ErrDamaged, path, off, why, line)
}
