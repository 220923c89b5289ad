//go:build unix

package main

import (
	"os"
	"syscall"
)

// fileOwner is the user id owning a file, where the system has one.
func fileOwner(fi os.FileInfo) (uid int, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), true
	}
	return 0, false
}

// openNonBlocking opens path for reading without blocking on a FIFO.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
