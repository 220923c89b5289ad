//go:build unix

package main

import (
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statInfo is a config file's mode and owner as fstat gives them.
type statInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (s statInfo) Name() string       { return "synbatch.yaml" }
func (s statInfo) Size() int64        { return 0 }
func (s statInfo) Mode() fs.FileMode  { return s.mode }
func (s statInfo) ModTime() time.Time { return time.Time{} }
func (s statInfo) IsDir() bool        { return false }
func (s statInfo) Sys() any           { return &syscall.Stat_t{Uid: s.uid} }

// TestConfigOthersCanChangeIsRefused: a config file that someone but the
// caller (or root) can change is refused, with what to do about it.
func TestConfigOthersCanChangeIsRefused(t *testing.T) {
	t.Parallel()
	const me = 1000
	for _, c := range []struct {
		name string
		info statInfo
		want string // "" when the file is fine
	}{
		{"mine, 0600", statInfo{0o600, me}, ""},
		{"mine, 0644 (no token: readable is fine)", statInfo{0o644, me}, ""},
		{"root's, 0644", statInfo{0o644, 0}, ""},
		{"mine, group-writable", statInfo{0o664, me}, "can be changed by others (mode 0664)"},
		{"mine, world-writable", statInfo{0o606, me}, "run chmod 600"},
		{"root's, world-writable", statInfo{0o666, 0}, "can be changed by others"},
		{"another user's, 0600", statInfo{0o600, 1001}, "belongs to user id 1001, not to you (1000)"},
		{"another user's, 0644", statInfo{0o644, 1001}, "use a config file of your own"},
	} {
		err := checkConfigOwner("/home/u/.config/synbatch.yaml", c.info, me)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}
