// Package nofollow is how synbatch creates, appends to, renames over and
// removes every file and folder it writes: the last element of each path is
// never followed when it is a symbolic link. The names synbatch writes are
// predictable (OUT.partial.jsonl, a bundle's folder, JOURNAL.lock), so
// anyone who can write to the output folder could plant a link there and
// have a run append to, or delete, whatever the link points at. A planted
// link is refused with a *LinkError naming it; nothing is done through it.
//
// Only the last element is checked: the folders above it are the ones the
// person named (--out, --journal), or ones synbatch made itself through
// this package, which refused a link where each was made.
package nofollow

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrLink is what every *LinkError matches with errors.Is.
var ErrLink = errors.New("symbolic link")

// ErrNotRegular is a path OpenFile found holding something other than a
// regular file (a FIFO, a device, a folder).
var ErrNotRegular = errors.New("not a regular file")

// LinkError is a symbolic link found where synbatch writes or deletes.
type LinkError struct {
	Op   string // what synbatch was about to do: "create", "append to", "replace", "remove"
	Path string
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("refusing to %s %s: it is a symbolic link, and synbatch never writes or deletes through one (remove the link, or give the real path)", e.Op, e.Path)
}

// Is makes errors.Is(err, ErrLink) true for a *LinkError.
func (e *LinkError) Is(target error) bool { return target == ErrLink }

// isLink reports whether path itself is a symbolic link (false when
// nothing is there).
func isLink(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Mode()&fs.ModeSymlink != 0, nil
}

// OpenFile is os.OpenFile that refuses a symbolic link at path, and a path
// that is not a regular file (a FIFO planted there is not waited on).
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	op := "open"
	switch {
	case flag&os.O_APPEND != 0:
		op = "append to"
	case flag&(os.O_WRONLY|os.O_RDWR) != 0:
		op = "write"
	}
	f, err := openFile(path, flag, perm)
	if isLinkErr(err) {
		return nil, &LinkError{Op: op, Path: path}
	}
	if errors.Is(err, fs.ErrExist) {
		// O_EXCL refused it: say so when what is there is a link.
		if link, _ := isLink(path); link {
			return nil, &LinkError{Op: "create", Path: path}
		}
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("refusing to %s %s: it is %w (%s)", op, path, ErrNotRegular, fi.Mode().Type())
	}
	return f, nil
}

// Open opens path for reading, refusing a symbolic link.
func Open(path string) (*os.File, error) { return OpenFile(path, os.O_RDONLY, 0) }

// CreateTemp is os.CreateTemp in dir, refusing a dir that is a symbolic
// link. The file itself is made with O_EXCL, which no link satisfies.
func CreateTemp(dir, pattern string) (*os.File, error) {
	if dir != "" {
		if err := checkDir(dir, "create a file in"); err != nil {
			return nil, err
		}
	}
	return os.CreateTemp(dir, pattern)
}

// Mkdir makes the folder path. When it exists already it must be a real
// folder, and the error wraps fs.ErrExist as os.Mkdir's does.
func Mkdir(path string, perm fs.FileMode) error {
	err := os.Mkdir(path, perm)
	if errors.Is(err, fs.ErrExist) {
		if cerr := checkDir(path, "use the folder"); cerr != nil {
			return cerr
		}
	}
	return err
}

// MkdirAll makes path and the folders above it that are missing. The
// nearest folder that exists, and each one made, must not be a symbolic
// link: a link planted where the first missing folder's parent should be
// would have the new folders made wherever it points.
func MkdirAll(path string, perm fs.FileMode) error {
	// An Lstat error (nothing there, or a file above it) sends us up to the
	// parent, whose own check names what is wrong.
	if _, lerr := os.Lstat(path); lerr == nil {
		return checkDir(path, "use the folder")
	}
	parent := filepath.Dir(path)
	if parent == path {
		return Mkdir(path, perm)
	}
	// The parent is checked (or made) first: a folder is only ever made in
	// a real folder.
	if err := MkdirAll(parent, perm); err != nil {
		return err
	}
	if err := Mkdir(path, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// checkDir says whether path is a real folder: not a link, not a file.
func checkDir(path, op string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &LinkError{Op: op, Path: path}
	}
	if !fi.IsDir() {
		return fmt.Errorf("refusing to %s %s: it is not a folder (%s)", op, path, fi.Mode().Type())
	}
	return nil
}

// CheckDir returns nil when path is a real folder (or nothing is there),
// a *LinkError when it is a symbolic link.
func CheckDir(path string) error {
	err := checkDir(path, "use the folder")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Rename is os.Rename that refuses to replace a symbolic link at newpath.
// (A rename would replace the link itself, not its target, but a link where
// synbatch's output goes is somebody else's doing: say so rather than
// quietly drop it.)
func Rename(oldpath, newpath string) error {
	link, err := isLink(newpath)
	if err != nil {
		return err
	}
	if link {
		return &LinkError{Op: "replace", Path: newpath}
	}
	return os.Rename(oldpath, newpath)
}

// Remove removes the file or empty folder path, refusing a symbolic link.
// Nothing there is not an error.
func Remove(path string) error {
	link, err := isLink(path)
	if err != nil {
		return err
	}
	if link {
		return &LinkError{Op: "remove", Path: path}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveAll removes path and what it holds, refusing a symbolic link at
// path or anywhere inside it. (os.RemoveAll would not follow a link inside
// the folder, but the folders synbatch removes are ones it made, which
// never hold a link: one there was planted, and is left for a person to
// look at.) Nothing there is not an error.
func RemoveAll(path string) error {
	link, err := isLink(path)
	if err != nil {
		return err
	}
	if link {
		return &LinkError{Op: "remove", Path: path}
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return &LinkError{Op: "remove the folder holding", Path: p}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(path)
}

// WriteFileAtomic writes data to path through a temporary file in the
// same folder, synced, then renamed into place: a reader never sees half a
// file, and a link at path is refused.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
