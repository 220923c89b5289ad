package jobs

import (
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// PasswordFile keeps generated passwords, the only place they are written.
// It is created 0600 with O_EXCL, and each password is written and synced
// before the request that sets it, so a crash never leaves a password set
// that nobody knows. On resume it is appended to, so the last line for a
// user is the password in effect.
type PasswordFile struct {
	mu   sync.Mutex
	f    *os.File
	path string
	// NotInEffect lists the names whose last line in the file, when it was
	// opened, is a NotSet mark: their generated password never took effect.
	NotInEffect []string
	marked      []string // this run's NotSet names
}

// OpenPasswordFile creates path, or with resume appends to it when it
// exists already (refusing one that others can read).
func OpenPasswordFile(path string, resume bool) (*PasswordFile, error) {
	return openSecretFile(path, resume, "user_id", "password")
}

// OpenTokenFile is OpenPasswordFile for --tokens-out: generated
// registration tokens, one per line beside the row's label, under a
// label,token header, so each can be handed to the person it names.
func OpenTokenFile(path string, resume bool) (*PasswordFile, error) {
	return openSecretFile(path, resume, "label", "token")
}

func openSecretFile(path string, resume bool, who, what string) (*PasswordFile, error) {
	f, err := nofollow.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if !resume {
			return nil, fmt.Errorf("passwords file %s exists: refusing to add to a file this run's journal does not know (move it away, or resume with the journal that wrote it)", path)
		}
		f, err = nofollow.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("passwords file: %w", err)
		}
		// The mode is read from the file opened, not the path, so a link
		// swapped in after the open changes nothing.
		fi, serr := f.Stat()
		if serr != nil {
			f.Close()
			return nil, fmt.Errorf("passwords file: %w", serr)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			f.Close()
			return nil, fmt.Errorf("passwords file %s is readable by others (mode %04o)", path, fi.Mode().Perm())
		}
		pf := &PasswordFile{f: f, path: path}
		if pf.NotInEffect, err = pf.notInEffect(); err != nil {
			f.Close()
			return nil, err
		}
		return pf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("passwords file: %w", err)
	}
	pf := &PasswordFile{f: f, path: path}
	if err := pf.write(who, what); err != nil {
		f.Close()
		return nil, err
	}
	return pf, nil
}

// Generate makes a password for userID and saves it durably.
func (p *PasswordFile) Generate(userID string) (string, error) {
	pw := NewPassword()
	if err := p.write(userID, pw); err != nil {
		return "", err
	}
	return pw, nil
}

func (p *PasswordFile) write(userID, pw string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := csv.NewWriter(p.f)
	if err := w.Write([]string{userID, pw}); err != nil {
		return fmt.Errorf("write passwords file: %w", err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write passwords file: %w", err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sync passwords file: %w", err)
	}
	return nil
}

// NotSet marks the password this run generated for name as never in
// effect: its write was refused, or never sent. The mark is a line with
// the name and an empty password, so that the file's last line for name
// no longer claims a password nobody can log in with (and Last finds none).
func (p *PasswordFile) NotSet(name string) error {
	if err := p.write(name, ""); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marked = append(p.marked, name)
	return nil
}

// Marked lists the names this run marked with NotSet.
func (p *PasswordFile) Marked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.marked)
}

// notInEffect lists the names whose last line is a NotSet mark.
func (p *PasswordFile) notInEffect() ([]string, error) {
	f, err := nofollow.OpenFile(p.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("read passwords file: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	last := map[string]string{}
	var order []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read passwords file %s: %w", p.path, err)
		}
		if _, seen := last[rec[0]]; !seen {
			order = append(order, rec[0])
		}
		last[rec[0]] = rec[1]
	}
	var out []string
	for _, name := range order {
		if last[name] == "" {
			out = append(out, name)
		}
	}
	return out, nil
}

// Last returns the password the file holds last for userID ("" if none),
// the one in effect if its write landed.
func (p *PasswordFile) Last(userID string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.Open(p.path)
	if err != nil {
		return "", fmt.Errorf("read passwords file: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	var pw string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return pw, nil
		}
		if err != nil {
			return "", fmt.Errorf("read passwords file %s: %w", p.path, err)
		}
		if rec[0] == userID {
			pw = rec[1]
		}
	}
}

// Close closes the file.
func (p *PasswordFile) Close() error {
	if p == nil {
		return nil
	}
	return p.f.Close()
}

// passwordAlphabet avoids characters that look alike (0/O, 1/l/I) and
// those a shell or a CSV cell would treat specially.
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewPassword returns 20 characters from crypto/rand: about 117 bits.
func NewPassword() string {
	return randomString(20)
}

func randomString(n int) string {
	b := make([]byte, n)
	// Rejection sampling keeps every character equally likely.
	limit := byte(256 - 256%len(passwordAlphabet))
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand.Read never fails on Linux
		}
		if buf[0] < limit {
			b[i] = passwordAlphabet[int(buf[0])%len(passwordAlphabet)]
			i++
		}
	}
	return string(b)
}
