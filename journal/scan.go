package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Tail is a journal's torn last line: what a kill left of the record being
// written. Readers leave it out; Load cuts it off and keeps it.
type Tail struct {
	Line   []byte // the line as read, newline included if it had one
	Offset int64  // where it starts: the size of the whole records before it
	No     int    // its line number, from 1
}

// Scan reads the journal r, named path in errors, and calls fn with each
// record: each complete line without its newline and the space around it,
// blank lines left out. The line is good only until fn returns. fn's error
// says the line is not a record synbatch writes.
//
// Every reader of a journal goes through Scan, so all of them share one
// set of rules:
//   - The first line is synbatch's run header, or the file is not a
//     journal (ErrForeign) and nothing of it is read as a result. An empty
//     file is an empty journal.
//   - The last line is torn when it has no newline, even if it parses (its
//     row is planned again and found done, never half counted), or when it
//     is not JSON at all. fn never sees a line without its newline; a torn
//     line is returned as the Tail, for Load to cut.
//   - Any other line fn refuses is damage (ErrDamaged), naming the file,
//     the line and its byte: a kill tears only the record being written,
//     so the rest of the file cannot be trusted. A whole line of valid JSON
//     that fn refuses (done flipped to dOne) is damage even when last.
//
// Lines may be of any length.
func Scan(r io.Reader, path string, fn func(line []byte) error) (*Tail, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	// The header's first bytes are judged before a line is read: a large
	// file without a newline is refused without being read whole.
	head, err := br.Peek(len(runPrefix))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	if !bytes.HasPrefix([]byte(runPrefix), head) {
		return nil, notJournal(path)
	}
	var (
		off  int64
		no   int
		long []byte
	)
	for {
		line, err := readLine(br, &long)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read journal %s: %w", path, err)
		}
		if len(line) == 0 {
			return nil, nil
		}
		no++
		if line[len(line)-1] != '\n' {
			return &Tail{Line: bytes.Clone(line), Offset: off, No: no}, nil
		}
		if no == 1 {
			if err := checkHeader(path, line); err != nil {
				return nil, err
			}
		}
		if rec := bytes.TrimSpace(line); len(rec) > 0 {
			if ferr := fn(rec); ferr != nil {
				line = bytes.Clone(line) // Peek may refill the buffer under it
				_, perr := br.Peek(1)
				if perr != nil && perr != io.EOF {
					return nil, fmt.Errorf("read journal %s: %w", path, perr)
				}
				if perr == nil || json.Valid(line) {
					return nil, damaged(path, no, off, ferr)
				}
				return &Tail{Line: line, Offset: off, No: no}, nil
			}
		}
		off += int64(len(line))
	}
}

// ScanFile is Scan of the journal at path, opened only for reading: for
// the readers that report on a journal and never repair it.
func ScanFile(path string, fn func(line []byte) error) (*Tail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	return Scan(f, path, fn)
}

// readLine reads up to and including the next newline, as ReadBytes does,
// but a line the buffer holds is returned in place: a million records read
// without a million allocations. The line is good until the next read;
// long holds one that outgrew the buffer.
func readLine(r *bufio.Reader, long *[]byte) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	*long = append((*long)[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = r.ReadSlice('\n')
		*long = append(*long, line...)
	}
	return *long, err
}
