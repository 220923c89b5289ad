package nofollow

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestEveryWriterRefusesALinkAndLeavesItsTargetAlone plants a link to a
// folder holding a file, and to a file, at the path each function is given:
// each returns a *LinkError and the targets are as they were.
func TestEveryWriterRefusesALinkAndLeavesItsTargetAlone(t *testing.T) {
	ops := map[string]func(p string) error{
		"OpenFile create": func(p string) error {
			f, err := OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err == nil {
				f.Close()
			}
			return err
		},
		"OpenFile append": func(p string) error {
			f, err := OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
		"Open": func(p string) error {
			f, err := Open(p)
			if err == nil {
				f.Close()
			}
			return err
		},
		"CreateTemp": func(p string) error {
			f, err := CreateTemp(p, "x-*")
			if err == nil {
				f.Close()
			}
			return err
		},
		"Mkdir":           func(p string) error { return Mkdir(p, 0o700) },
		"MkdirAll":        func(p string) error { return MkdirAll(p, 0o700) },
		"MkdirAll below":  func(p string) error { return MkdirAll(filepath.Join(p, "a", "b"), 0o700) },
		"CheckDir":        CheckDir,
		"Rename":          func(p string) error { return Rename(filepath.Join(filepath.Dir(p), "src"), p) },
		"Remove":          Remove,
		"RemoveAll":       RemoveAll,
		"WriteFileAtomic": func(p string) error { return WriteFileAtomic(p, []byte("x"), 0o600) },
	}
	for name, op := range ops {
		for _, kind := range []string{"file", "folder"} {
			t.Run(name+" "+kind, func(t *testing.T) {
				root := t.TempDir()
				outside := filepath.Join(root, "outside")
				if err := os.Mkdir(outside, 0o700); err != nil {
					t.Fatal(err)
				}
				sentinel := filepath.Join(outside, "sentinel")
				if err := os.WriteFile(sentinel, []byte("keep"), 0o600); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(root, "out")
				if err := os.Mkdir(out, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(out, "src"), []byte("new"), 0o600); err != nil {
					t.Fatal(err)
				}
				target := sentinel
				if kind == "folder" {
					target = outside
				}
				p := filepath.Join(out, "planted")
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				err := op(p)
				var le *LinkError
				if !errors.As(err, &le) || !errors.Is(err, ErrLink) || le.Path == "" {
					t.Fatalf("%s through a link to a %s: %v, want a *LinkError", name, kind, err)
				}
				if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
					t.Fatalf("the sentinel reads %q, %v", b, err)
				}
				ents, _ := os.ReadDir(outside)
				if len(ents) != 1 {
					t.Fatalf("the folder outside holds %d entries, want only the sentinel", len(ents))
				}
				if got, err := os.Readlink(p); err != nil || got != target {
					t.Fatalf("the link was changed: %q, %v", got, err)
				}
			})
		}
	}
}

// TestWritersWorkWithoutLinks: the same calls on plain paths do their job.
func TestWritersWorkWithoutLinks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two")
	f.Close()
	if b, _ := os.ReadFile(p); string(b) != "onetwo" {
		t.Fatalf("file reads %q", b)
	}
	if err := MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Mkdir(filepath.Join(dir, "a"), 0o700); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Mkdir of an existing folder: %v, want ErrExist", err)
	}
	if err := RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatalf("Remove of nothing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a still there: %v", err)
	}
}
