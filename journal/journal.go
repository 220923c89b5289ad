// Package journal is synbatch's append-only result journal: one JSON line per
// finished row, so a run killed at any instant can be resumed without doing a
// row twice. One goroutine owns the file and commits records in groups; a
// record is handed to the kernel before Append returns, so a killed process
// loses nothing it acknowledged, and it is fsynced in groups (and on Sync).
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Outcome is what became of a row.
type Outcome string

// Outcomes a row record may carry. Done, Unchanged and Skipped are final: a
// resumed run does not touch such a row again. Failed rows are tried again;
// uncertain rows are settled again (never counted as finished).
const (
	Done      Outcome = "done"
	Unchanged Outcome = "unchanged"
	Skipped   Outcome = "skipped"
	Failed    Outcome = "failed"
	// Uncertain is a write whose answer never came and whose effect cannot be
	// read back (a password). It is not resent unless asked, so nobody is
	// logged out twice, but it is not finished either: every later run
	// tries to settle it and reports it while it stays uncertain.
	Uncertain Outcome = "uncertain"
)

// Final reports whether a resumed run leaves the row alone.
func (o Outcome) Final() bool { return o != Failed && o != Uncertain && o != "" }

// Header opens every run's part of the journal.
type Header struct {
	Type           string `json:"type"` // "run"
	Tool           string `json:"tool"`
	Version        string `json:"version"`
	Manifest       string `json:"manifest"`
	ManifestSHA256 string `json:"manifest_sha256"`
	Server         string `json:"server"`
	// Actor is the user id of the admin whose token ran the run (whoami),
	// for the people who later ask who did it.
	Actor    string    `json:"actor,omitempty"`
	Started  time.Time `json:"started"`
	Insecure bool      `json:"insecure,omitempty"`
	Args     []string  `json:"args,omitempty"` // flags that change behaviour, never a secret
	// Validated is what the run learnt validating the manifest (its
	// fingerprint, counts and duplicate rows), for a resume to reuse.
	Validated json.RawMessage `json:"validated,omitempty"`
	// Parse is the options that gave the rows their meaning (and their
	// keys) in this run, for a resume to tell whether its own options
	// mean something else for a row this run finished. Absent from
	// journals written before it: their keys are the legacy ones.
	Parse json.RawMessage `json:"parse,omitempty"`
}

// Record is one row's result, or with Type "begin" the note that a write for
// it is about to be sent (so a resumed run can tell what a killed run did),
// or with Type "task" the id of a long-running server task the row started
// (so a resumed run polls that task instead of starting a second one).
// It never holds a password or anything a password could be recovered from.
type Record struct {
	Type       string   `json:"type"` // "row" or "begin"
	Row        int      `json:"row"`
	Key        string   `json:"key"`
	UserID     string   `json:"user_id,omitempty"`
	Action     string   `json:"action,omitempty"`
	Outcome    Outcome  `json:"outcome,omitempty"`
	Status     int      `json:"status,omitempty"`
	Errcode    string   `json:"errcode,omitempty"`
	Error      string   `json:"error,omitempty"`
	Changed    []string `json:"changed,omitempty"`
	Task       string   `json:"task,omitempty"` // a server-side task's id (type "task")
	Note       string   `json:"note,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	DurationMS int64    `json:"duration_ms,omitempty"`
	Time       int64    `json:"ts,omitempty"` // unix ms
}

// State is what an existing journal says about its rows.
type State struct {
	Final *Finished         // rows with a final outcome
	Begun map[string]bool   // keys with a write sent but no final record
	Tasks map[string]string // key -> id of a long-running server task the row started
	// Uncertain holds keys whose latest result is uncertain: a password
	// write that may have landed. A resume settles them without resending.
	Uncertain map[string]bool
	Runs      []Header
	Records   int
	Repaired  string // path of the saved torn tail, when one was cut
}

// Load reads the journal at path (a missing file is an empty journal), by
// Scan's rules. A last line torn by a kill is cut off and kept in
// path+".torn"; damage before the last line is an error naming its line and
// byte offset, since the rest cannot be trusted.
func Load(path string) (*State, error) {
	st := &State{Final: &Finished{}, Begun: map[string]bool{}, Tasks: map[string]string{}, Uncertain: map[string]bool{}}
	f, err := openNoFollow(path, os.O_RDWR, "journal")
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Scan judges the header before anything is read as a result, let
	// alone cut: a file synbatch did not write is left as it is.
	tail, err := Scan(f, path, st.add)
	if err != nil {
		return nil, err
	}
	if tail == nil {
		return st, nil
	}
	// A kill can tear only the record being written, the last one. A live
	// run may be writing it right now: repair only under the journal's lock.
	lock, _, err := takeLock(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer releaseLock(lock)
	if err := saveTorn(path, tail.Line); err != nil {
		return nil, err
	}
	if err := f.Truncate(tail.Offset); err != nil {
		return nil, fmt.Errorf("repair journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("repair journal: %w", err)
	}
	st.Repaired = path + ".torn"
	return st, nil
}

func saveTorn(path string, line []byte) error {
	f, err := openNoFollow(path+".torn", os.O_CREATE|os.O_WRONLY|os.O_APPEND, "torn tail file")
	if err != nil {
		return fmt.Errorf("keep torn journal tail: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(bytes.TrimRight(line, "\n"), '\n')); err != nil {
		return fmt.Errorf("keep torn journal tail: %w", err)
	}
	return f.Sync()
}

func (st *State) add(line []byte) error {
	if len(line) == 0 {
		return nil
	}
	// A resume over a million records must be quick: the row records
	// synbatch writes are read by their known shape, the rest decoded.
	if key, outcome, ok := fastRow(line); ok {
		st.row(key, outcome)
		return nil
	}
	var p struct {
		Type    string  `json:"type"`
		Tool    string  `json:"tool"`
		Row     int     `json:"row"`
		Key     string  `json:"key"`
		Outcome Outcome `json:"outcome"`
		Task    string  `json:"task"`
	}
	if err := json.Unmarshal(line, &p); err != nil {
		return err
	}
	if err := checkRecord(p.Type, p.Key, p.Row, p.Outcome, p.Task, p.Tool); err != nil {
		return err
	}
	switch p.Type {
	case "run":
		var h Header
		if err := json.Unmarshal(line, &h); err != nil {
			return err
		}
		st.Runs = append(st.Runs, h)
	case "row":
		st.row(p.Key, p.Outcome)
	case "begin":
		// A begin always precedes its row's result in a journal.
		st.Begun[p.Key] = true
	case "task":
		st.Tasks[p.Key] = p.Task
	}
	return nil
}

// Writer appends records through one goroutine.
type Writer struct {
	f     *os.File
	lock  *os.File
	reqs  chan request
	done  chan error
	errMu sync.Mutex
	err   error // the first write error, for AppendNoWait callers
	// Stale names a run that held the lock and died without releasing it
	// (its lock file was left; the kernel had freed the lock itself).
	Stale string
}

type request struct {
	line []byte
	sync bool
	ack  chan error
}

// Create opens path for appending (creating it 0600), takes an exclusive
// lock so a second run cannot write the same journal, and writes h.
func Create(path string, h Header) (*Writer, error) {
	// The file is judged before its lock is taken: nothing is written
	// next to a file that is not a journal.
	f, err := openNoFollow(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, "journal")
	if err != nil {
		return nil, err
	}
	if err := checkIsJournal(f, path); err != nil {
		f.Close()
		return nil, err
	}
	lock, stale, err := takeLock(path + ".lock")
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{f: f, lock: lock, Stale: stale, reqs: make(chan request, 256), done: make(chan error, 1)}
	go w.loop()
	h.Type = "run"
	if err := w.append(h, true); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// End closes a run's part of the journal with what it did; summary shows it.
type End struct {
	Type           string         `json:"type"` // "end"
	Outcomes       map[string]int `json:"outcomes"`
	NotDone        int            `json:"not_done"`
	Concurrency    int            `json:"concurrency"`
	ConcurrencyMax int            `json:"concurrency_max"`
	Adaptive       bool           `json:"adaptive"`
	ElapsedS       float64        `json:"elapsed_seconds"`
	StoppedBy      string         `json:"stopped_by,omitempty"`
}

// End writes the run's closing record.
func (w *Writer) End(e End) error {
	e.Type = "end"
	return w.append(e, true)
}

// Append writes r; it returns once the record is in the kernel's hands.
func (w *Writer) Append(r Record) error {
	if r.Type == "" {
		r.Type = "row"
	}
	r.Time = time.Now().UnixMilli()
	return w.append(r, false)
}

// AppendSync writes r and fsyncs the journal before returning.
func (w *Writer) AppendSync(r Record) error {
	if r.Type == "" {
		r.Type = "row"
	}
	r.Time = time.Now().UnixMilli()
	return w.append(r, true)
}

func (w *Writer) append(v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode journal record: %w", err)
	}
	ack := make(chan error, 1)
	w.reqs <- request{line: append(b, '\n'), sync: sync, ack: ack}
	return <-ack
}

// AppendNoWait queues r and returns at once, with the error of an earlier
// write if one failed. For a row's result: if a kill loses it, the row's
// begin record (always acknowledged) makes the resume re-plan the row and
// find it applied, so nothing is done twice.
func (w *Writer) AppendNoWait(r Record) error {
	if err := w.lastErr(); err != nil {
		return err
	}
	if r.Type == "" {
		r.Type = "row"
	}
	r.Time = time.Now().UnixMilli()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode journal record: %w", err)
	}
	w.reqs <- request{line: append(b, '\n')}
	return nil
}

func (w *Writer) lastErr() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// loop is the single writer: it takes every record queued at the moment,
// writes them with one write(2) and acknowledges them together. It fsyncs
// when asked and at least once a second.
func (w *Writer) loop() {
	var (
		buf      []byte
		acks     []chan error
		failed   error
		lastSync = time.Now()
		dirty    bool
	)
	for req := range w.reqs {
		buf, acks = append(buf[:0], req.line...), append(acks[:0], req.ack)
		needSync := req.sync
	drain:
		for len(buf) < 1<<20 {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break drain
				}
				buf = append(buf, r.line...)
				acks = append(acks, r.ack)
				needSync = needSync || r.sync
			default:
				break drain
			}
		}
		if failed == nil {
			if _, err := w.f.Write(buf); err != nil {
				failed = fmt.Errorf("write journal: %w", err)
			}
			dirty = true
		}
		if failed == nil && (needSync || time.Since(lastSync) > time.Second) {
			if err := w.f.Sync(); err != nil {
				failed = fmt.Errorf("sync journal: %w", err)
			}
			lastSync, dirty = time.Now(), false
		}
		if failed != nil {
			w.errMu.Lock()
			w.err = failed
			w.errMu.Unlock()
		}
		for _, a := range acks {
			if a != nil {
				a <- failed
			}
		}
	}
	if failed == nil && dirty {
		if err := w.f.Sync(); err != nil {
			failed = fmt.Errorf("sync journal: %w", err)
		}
	}
	w.done <- failed
}

// Close flushes, fsyncs and closes the journal, and releases its lock.
func (w *Writer) Close() error {
	close(w.reqs)
	err := <-w.done
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close journal: %w", cerr)
	}
	releaseLock(w.lock)
	return err
}

// takeLock locks path (flock, or LockFileEx on Windows), which the system
// releases when the holder dies, and writes who holds it so a second run can name them.
func takeLock(path string) (f *os.File, stale string, err error) {
	f, err = openNoFollow(path, os.O_CREATE|os.O_RDWR, "journal lock")
	if err != nil {
		return nil, "", err
	}
	holder, _ := io.ReadAll(io.LimitReader(f, 512))
	if err := tryLock(f, lockExclusive); err != nil {
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another synbatch run"
		}
		return nil, "", fmt.Errorf("%w: the journal is in use by %s (lock %s): wait for it to finish, or stop it", ErrLocked, who, path)
	}
	// The lock is ours. A holder still written in the file died without
	// cleaning up; the kernel freed its lock, so it is only reported.
	stale = strings.TrimSpace(string(holder))
	host, _ := os.Hostname()
	me := fmt.Sprintf("synbatch pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(me+"\n"), 0) // only informative: the flock is the lock
	}
	return f, stale, nil
}

func releaseLock(f *os.File) {
	if f == nil {
		return
	}
	// Clear our name before unlocking; the file stays, since removing a
	// lock file lets two later runs lock two different files.
	_ = f.Truncate(0)
	f.Close()
}

// row takes a row's result. Any result ends the row's begun write: a
// failure means the run that began it got an answer.
func (st *State) row(key string, o Outcome) {
	st.Records++
	if o.Final() {
		st.Final.add(key)
	}
	if o == Uncertain {
		st.Uncertain[key] = true
	} else {
		delete(st.Uncertain, key)
	}
	delete(st.Begun, key)
}

// fastRow reads a row record as Writer writes it: {"type":"row","row":N,
// "key":"HEX",...,"outcome":"WORD",...}. Anything else (another type, a
// different shape, damage) is left to the full decoder, which also judges
// whether the line is JSON at all.
func fastRow(line []byte) (key string, outcome Outcome, ok bool) {
	const head = `{"type":"row","row":`
	if !bytes.HasPrefix(line, []byte(head)) || line[len(line)-1] != '}' {
		return "", "", false
	}
	rest := line[len(head):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || !bytes.HasPrefix(rest[i:], []byte(`,"key":"`)) {
		return "", "", false
	}
	rest = rest[i+len(`,"key":"`):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return "", "", false
	}
	key = string(rest[:end])
	if !validKey(key) {
		return "", "", false
	}
	o := bytes.Index(rest, []byte(`,"outcome":"`))
	if o < 0 {
		return "", "", false
	}
	word := rest[o+len(`,"outcome":"`):]
	end = bytes.IndexByte(word, '"')
	if end <= 0 {
		return "", "", false
	}
	switch out := Outcome(word[:end]); out {
	case Done, Unchanged, Skipped, Failed, Uncertain:
		return key, out, true
	}
	return "", "", false
}
