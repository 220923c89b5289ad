// Command ociroot unpacks the root filesystem of the single image in an OCI
// archive (what `buildah push IMAGE oci-archive:FILE` writes) into a
// directory, so that CI can run the image's binary with chroot on a machine
// that cannot run containers:
//
//	go run ./packaging/ociroot dist/synbatch-image.oci.tar /tmp/rootfs
//	chroot /tmp/rootfs /synbatch --version
//
// It applies the layers in order; it is for images built here, so it
// refuses entries that would land outside the directory and does not
// implement whiteouts (a FROM scratch image has nothing to delete).
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ociroot ARCHIVE DIR")
		os.Exit(2)
	}
	if err := unpack(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "ociroot: %v\n", err)
		os.Exit(1)
	}
}

func unpack(archive, dir string) error {
	blobs, err := readArchive(archive)
	if err != nil {
		return err
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil {
		return fmt.Errorf("%s: index.json: %w", archive, err)
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%s: want one image, found %d", archive, len(index.Manifests))
	}
	var manifest struct{ Layers []descriptor }
	if err := json.Unmarshal(blobs[blobPath(index.Manifests[0].Digest)], &manifest); err != nil {
		return fmt.Errorf("%s: manifest: %w", archive, err)
	}
	if len(manifest.Layers) == 0 {
		return fmt.Errorf("%s: the image has no layers", archive)
	}
	for _, l := range manifest.Layers {
		data, ok := blobs[blobPath(l.Digest)]
		if !ok {
			return fmt.Errorf("%s: layer %s missing", archive, l.Digest)
		}
		if err := applyLayer(data, l.MediaType, dir); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	return nil
}

func blobPath(digest string) string {
	return "blobs/" + strings.Replace(digest, ":", "/", 1)
}

// readArchive returns every regular file of the OCI archive by its path.
func readArchive(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
}

func applyLayer(data []byte, mediaType, dir string) error {
	var r io.Reader = strings.NewReader(string(data))
	if strings.HasSuffix(mediaType, "gzip") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
			continue // "./" itself, or an entry outside dir
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if err := errors.Join(err, f.Close()); err != nil {
				return err
			}
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil && !errors.Is(err, os.ErrPermission) {
			return err
		}
	}
}
