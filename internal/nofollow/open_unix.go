//go:build unix

package nofollow

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openFile opens path without following a link at its last element:
// O_NOFOLLOW makes the kernel refuse one (ELOOP) in the same call, so no
// link can be swapped in between a check and the open. O_NONBLOCK keeps a
// FIFO from hanging the open; OpenFile then refuses it.
func openFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
}

func isLinkErr(err error) bool { return errors.Is(err, syscall.ELOOP) }
