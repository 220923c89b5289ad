//go:build unix

package journal

import (
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
