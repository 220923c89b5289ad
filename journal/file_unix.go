//go:build unix

package journal

import (
	"errors"
	"os"
	"syscall"
)

// Lock modes of tryLock.
const (
	lockExclusive = syscall.LOCK_EX
	lockShared    = syscall.LOCK_SH
)

// tryLock takes an flock on f without waiting; the kernel releases it when
// the holder dies.
func tryLock(f *os.File, mode int) error {
	return syscall.Flock(int(f.Fd()), mode|syscall.LOCK_NB)
}

// openNoFollowFile opens path, refusing a symbolic link (errSymlink) and
// never blocking on a FIFO.
func openNoFollowFile(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errSymlink
	}
	return f, err
}
