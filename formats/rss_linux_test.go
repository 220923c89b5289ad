//go:build linux

package formats

import (
	"os"
	"syscall"
)

// peakRSS is a finished child's peak resident set in bytes (Linux reports
// it in KiB).
func peakRSS(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return ru.Maxrss << 10, true
}
