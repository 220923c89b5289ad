// Command release builds synbatch's release files into a directory (dist/
// by default): for each target a static, -trimpath binary in a .tar.gz (a
// .zip for Windows) with the README, LICENSE, CHANGELOG, man page and shell
// completions; Debian packages built with nfpm; and SHA256SUMS over them.
//
// Two runs on one commit give the same bytes: the binaries carry no build
// id, path or VCS stamp beyond the version and commit given on the command
// line, and every archive entry has the commit's time, fixed owners and
// modes, and a fixed order. `make release` runs it; see the Makefile.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type options struct {
	version, commit string
	mtime           time.Time
	out             string
	targets         []string
	allowMissing    []string // targets whose build may fail (reported, not fatal)
	nfpm            []string // the nfpm command; none: no Debian packages
	goCmd           string
}

// file is one entry of an archive: where it goes, its bytes and its mode.
type file struct {
	name string
	data []byte
	mode int64
}

func main() {
	var o options
	var targets, allow, nfpm, epoch string
	flag.StringVar(&o.version, "version", "", "version to stamp, such as v1.2.0 (required)")
	flag.StringVar(&o.commit, "commit", "", "commit id to stamp (required)")
	flag.StringVar(&epoch, "epoch", os.Getenv("SOURCE_DATE_EPOCH"), "time of every file, in Unix seconds (the commit's time)")
	flag.StringVar(&o.out, "out", "dist", "directory to write (emptied first)")
	flag.StringVar(&targets, "targets", "linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64", "GOOS/GOARCH pairs")
	flag.StringVar(&allow, "allow-missing", "", "targets that may fail to build: reported, left out, not fatal")
	flag.StringVar(&nfpm, "nfpm", "", "nfpm command line, to build .deb packages for the linux targets")
	flag.StringVar(&o.goCmd, "go", "go", "the go command")
	flag.Parse()
	o.targets, o.allowMissing, o.nfpm = strings.Fields(targets), strings.Fields(allow), strings.Fields(nfpm)
	if o.version == "" || o.commit == "" || epoch == "" {
		fmt.Fprintln(os.Stderr, "release: -version, -commit and -epoch (or SOURCE_DATE_EPOCH) are required")
		os.Exit(2)
	}
	var sec int64
	if _, err := fmt.Sscan(epoch, &sec); err != nil {
		fmt.Fprintf(os.Stderr, "release: -epoch %q: want Unix seconds\n", epoch)
		os.Exit(2)
	}
	o.mtime = time.Unix(sec, 0).UTC()
	if err := release(o); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func release(o options) error {
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	work := filepath.Join(o.out, ".work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(work)

	docs, err := documents(o, work)
	if err != nil {
		return err
	}
	var missing []string
	for _, t := range o.targets {
		goos, goarch, ok := strings.Cut(t, "/")
		if !ok {
			return fmt.Errorf("target %q: want GOOS/GOARCH", t)
		}
		bin := filepath.Join(work, goos+"-"+goarch, exeName(goos))
		if err := build(o, goos, goarch, bin); err != nil {
			if slices.Contains(o.allowMissing, t) {
				fmt.Fprintf(os.Stderr, "release: %s LEFT OUT (allowed by -allow-missing): %v\n", t, err)
				missing = append(missing, t)
				continue
			}
			return err
		}
		if err := archive(o, goos, goarch, bin, docs); err != nil {
			return err
		}
		if goos == "linux" && len(o.nfpm) > 0 {
			if err := debian(o, goarch, bin, docs, work); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	if err := checksums(o.out); err != nil {
		return err
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "release: built all targets but %s\n", strings.Join(missing, ", "))
	}
	return nil
}

// documents returns the files every archive holds beside the binary: the
// man page and completions come from a synbatch built for this machine.
func documents(o options, work string) ([]file, error) {
	host := filepath.Join(work, "host", exeName(""))
	cmd := exec.Command(o.goCmd, "build", "-trimpath", "-buildvcs=false", "-o", host, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build synbatch for this machine: %w", err)
	}
	var docs []file
	for _, name := range []string{"README.md", "LICENSE", "CHANGELOG.md"} {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		docs = append(docs, file{name: name, data: b, mode: 0o644})
	}
	for _, d := range []struct {
		name string
		args []string
	}{
		{"synbatch.1", []string{"man"}},
		{"completions/synbatch.bash", []string{"completion", "bash"}},
		{"completions/_synbatch", []string{"completion", "zsh"}},
		{"completions/synbatch.fish", []string{"completion", "fish"}},
	} {
		var out bytes.Buffer
		cmd := exec.Command(host, d.args...)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("synbatch %s: %w", strings.Join(d.args, " "), err)
		}
		docs = append(docs, file{name: d.name, data: out.Bytes(), mode: 0o644})
	}
	return docs, nil
}

func exeName(goos string) string {
	if goos == "windows" || (goos == "" && os.PathSeparator == '\\') {
		return "synbatch.exe"
	}
	return "synbatch"
}

// build writes a static binary: no cgo, no paths of this machine, no build
// id, and the version and commit from the command line rather than from
// the VCS state (which would differ between a clone and a work tree).
func build(o options, goos, goarch, bin string) error {
	ldflags := fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.commit=%s", o.version, o.commit)
	cmd := exec.Command(o.goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fmt.Fprintf(os.Stderr, "release: building %s/%s\n", goos, goarch)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s/%s: %w\n%s", goos, goarch, err, stderr.String())
	}
	return nil
}

func archive(o options, goos, goarch, bin string, docs []file) error {
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("synbatch_%s_%s_%s", strings.TrimPrefix(o.version, "v"), goos, goarch)
	files := append([]file{{name: exeName(goos), data: b, mode: 0o755}}, docs...)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	if goos == "windows" {
		return writeZip(filepath.Join(o.out, base+".zip"), base, files, o.mtime)
	}
	return writeTarGz(filepath.Join(o.out, base+".tar.gz"), base, files, o.mtime)
}

func writeTarGz(path, dir string, files []file, mtime time.Time) error {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, d := range dirsOf(dir, files) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeZip(path, dir string, files []file, mtime time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, d := range dirsOf(dir, files) {
		h := &zip.FileHeader{Name: d + "/", Modified: mtime}
		h.SetMode(os.ModeDir | 0o755)
		if _, err := zw.CreateHeader(h); err != nil {
			return err
		}
	}
	for _, f := range files {
		h := &zip.FileHeader{Name: dir + "/" + f.name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// dirsOf lists the archive's directories, parents first.
func dirsOf(dir string, files []file) []string {
	dirs := []string{dir}
	for _, f := range files {
		if d := filepath.ToSlash(filepath.Dir(f.name)); d != "." && !slices.Contains(dirs, dir+"/"+d) {
			dirs = append(dirs, dir+"/"+d)
		}
	}
	return dirs
}

// debian packages the linux binary with nfpm (packaging/nfpm.yaml): the
// files are laid out in a staging directory with the commit's time, and
// SOURCE_DATE_EPOCH gives nfpm's own files the same.
func debian(o options, goarch, bin string, docs []file, work string) error {
	stage := filepath.Join(work, "deb-"+goarch)
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	man, err := gzipped(find(docs, "synbatch.1"), o.mtime)
	if err != nil {
		return err
	}
	layout := []file{
		{name: "synbatch", data: b, mode: 0o755},
		{name: "synbatch.1.gz", data: man, mode: 0o644},
		{name: "LICENSE", data: find(docs, "LICENSE"), mode: 0o644},
		{name: "synbatch.bash", data: find(docs, "completions/synbatch.bash"), mode: 0o644},
		{name: "_synbatch", data: find(docs, "completions/_synbatch"), mode: 0o644},
		{name: "synbatch.fish", data: find(docs, "completions/synbatch.fish"), mode: 0o644},
	}
	for _, f := range layout {
		p := filepath.Join(stage, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, os.FileMode(f.mode)); err != nil {
			return err
		}
		if err := os.Chmod(p, os.FileMode(f.mode)); err != nil {
			return err
		}
		if err := os.Chtimes(p, o.mtime, o.mtime); err != nil {
			return err
		}
	}
	debVersion := strings.TrimPrefix(o.version, "v")
	target := filepath.Join(o.out, fmt.Sprintf("synbatch_%s_%s.deb", debVersion, goarch))
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	config, err := filepath.Abs(filepath.Join("packaging", "nfpm.yaml"))
	if err != nil {
		return err
	}
	args := append(slices.Clone(o.nfpm[1:]), "package", "--config", config, "--packager", "deb", "--target", abs)
	cmd := exec.Command(o.nfpm[0], args...)
	cmd.Dir = stage // nfpm.yaml names its sources relative to it
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+fmt.Sprint(o.mtime.Unix()),
		"SYNBATCH_VERSION="+debVersion, "SYNBATCH_ARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "release: packaging %s\n", filepath.Base(target))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nfpm for linux/%s: %w", goarch, err)
	}
	return nil
}

func find(docs []file, name string) []byte {
	for _, d := range docs {
		if d.name == name {
			return d.data
		}
	}
	panic("release: no document " + name)
}

// gzipped is data compressed as gzip -9n does: no name, the given time.
func gzipped(data []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	gz.ModTime = mtime
	if _, err := gz.Write(data); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checksums writes SHA256SUMS, in sha256sum's format, over every file of
// dir.
func checksums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var sums strings.Builder
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SHA256SUMS" {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), e.Name())
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o644)
}
