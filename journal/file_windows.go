//go:build windows

package journal

import (
	"os"

	"golang.org/x/sys/windows"
)

// Lock modes of tryLock.
const (
	lockExclusive = windows.LOCKFILE_EXCLUSIVE_LOCK
	lockShared    = 0
)

// tryLock takes a LockFileEx lock on f without waiting; Windows releases it
// when the holder's handle closes, or the holder dies. Windows locks are
// mandatory: the byte locked lies far past the holder's note, so a second
// run can still read who holds it.
func tryLock(f *os.File, mode int) error {
	ol := windows.Overlapped{OffsetHigh: 1 << 30}
	return windows.LockFileEx(windows.Handle(f.Fd()), uint32(mode)|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
}
