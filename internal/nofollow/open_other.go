//go:build !unix

package nofollow

import (
	"io/fs"
	"os"
)

// errLinkFound marks a link found by openFile's Lstat.
type errLinkFound struct{}

func (errLinkFound) Error() string { return "symbolic link" }

// openFile opens path, refusing a link at its last element. Windows has no
// O_NOFOLLOW: the link is looked for first (a race the unix build does not
// have).
func openFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if link, err := isLink(path); err != nil {
		return nil, err
	} else if link {
		return nil, errLinkFound{}
	}
	return os.OpenFile(path, flag, perm)
}

func isLinkErr(err error) bool {
	_, ok := err.(errLinkFound)
	return ok
}
