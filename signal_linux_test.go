//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitReadingInto waits until process pid has path open and has read past
// its first 64 KiB, as /proc tells: the state a signal test needs, where a
// fixed sleep was too short on a loaded machine.
func waitReadingInto(t *testing.T, pid int, path string) {
	t.Helper()
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not read into %s within 60 s", pid, path)
		}
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); target != path {
				continue
			}
			info, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(info), "\n") {
				if pos, ok := strings.CutPrefix(line, "pos:"); ok {
					if n, _ := strconv.ParseInt(strings.TrimSpace(pos), 10, 64); n > 64<<10 {
						return
					}
				}
			}
		}
	}
}
