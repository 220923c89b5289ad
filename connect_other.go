//go:build !unix

package main

import "os"

// fileOwner is the user id owning a file: none on this system (file
// ownership is an ACL there, which the mode check does not see either).
func fileOwner(os.FileInfo) (uid int, ok bool) { return 0, false }

// openNonBlocking opens path for reading (there are no FIFOs to hang on
// in the file system here).
func openNonBlocking(path string) (*os.File, error) {
	return os.Open(path)
}
