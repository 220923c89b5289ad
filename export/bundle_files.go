package export

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/synapse"

	"github.com/synbatch/synbatch/internal/nofollow"
)

const (
	bundleFormat = "synbatch-bundle/1"
	manifestName = "manifest.json"
	mediaDir     = "media"
	indexName    = "index.csv"
	// maxManifest bounds what a resume reads as a manifest: a user with a
	// million media files stays far below it.
	maxManifest = 256 << 20
)

// bundleDocs are the files every bundle holds besides the manifest and media.
func bundleDocs() []string {
	return []string{"user.json", "devices.json", "connections.json", "account_data.json",
		"pushers.json", "ratelimit.json", "rooms.json", "media.json"}
}

// Manifest is a bundle's manifest.json: what the bundle holds, so that a
// reader (or a resumed run) can tell a complete bundle from a cut one.
type Manifest struct {
	Format  string    `json:"format"` // "synbatch-bundle/1"
	UserID  string    `json:"user_id"`
	Tool    string    `json:"tool"`
	Created time.Time `json:"created"`
	// Media says whether the user's media files were downloaded into media/.
	Media bool `json:"media"`
	// Events is EventsSent or EventsAll when events/ holds a file per room.
	Events       string         `json:"events,omitempty"`
	Files        []ManifestFile `json:"files"`
	SkippedMedia []SkippedMedia `json:"skipped_media,omitempty"`

	size int64 // of manifest.json itself, once written or read
}

// ManifestFile is one file of a bundle. Path is slash-separated and relative
// to the bundle's folder.
type ManifestFile struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	MediaID     string `json:"media_id,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	UploadName  string `json:"upload_name,omitempty"`
	// A room's events file: the room, the user's membership when it was
	// read, and how many events (one a line) it holds.
	RoomID     string `json:"room_id,omitempty"`
	Membership string `json:"membership,omitempty"`
	Events     *int64 `json:"events,omitempty"`
}

// SkippedMedia is a listed media file the bundle does not hold, and why.
type SkippedMedia struct {
	MediaID string `json:"media_id"`
	Reason  string `json:"reason"`
}

// totals counts the bundle's files and bytes, the manifest included.
func (m *Manifest) totals() (int, int64) {
	n := m.size
	for _, f := range m.Files {
		n += f.Size
	}
	return len(m.Files) + 1, n
}

// ---------------------------------------------------------------- names

// folderName is the folder a user's bundle goes in: the localpart made safe
// (lowercase letters, digits and ._=+- kept, anything else '_', no leading
// dot, at most 48 bytes) and the first hashLen hex digits of the sha256 of
// the whole id. Whatever the id holds ("@../../x:hs"), the name has no
// separator, is never "." or "..", and ids that clean up alike still differ
// by their hash. Letters are lowercased so that a case-insensitive file
// system cannot merge two folders.
func folderName(userID string, hashLen int) string {
	local := strings.TrimPrefix(userID, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(local) {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '=', r == '+', r == '-':
			b.WriteRune(r)
		case r == '.' && b.Len() > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("user")
	}
	sum := sha256.Sum256([]byte(userID))
	h := hex.EncodeToString(sum[:])
	return b.String() + "-" + h[:min(max(hashLen, 8), len(h))]
}

// safeFolder reports whether name is one plain entry of the output
// directory as folderName makes them, so an edited index.csv cannot point a
// run (which deletes unfinished folders) anywhere else.
func safeFolder(name string) bool {
	if name == "" || len(name) > 200 || name[0] == '.' || name == indexName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=+-", c) >= 0) {
			return false
		}
	}
	return filepath.IsLocal(name)
}

// mediaFileName is the file a media id is saved as: the id itself when it
// is plainly safe (Synapse's are 24 letters), a hash of it otherwise. Names
// are compared without case, for case-insensitive file systems.
func mediaFileName(id string, taken map[string]bool) string {
	name := id
	ok := id != "" && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok || taken[strings.ToLower(name)] {
		sum := sha256.Sum256([]byte(id))
		name = "media-" + hex.EncodeToString(sum[:12])
	}
	taken[strings.ToLower(name)] = true
	return name
}

// mediaExt is the extension a saved upload gets, so that it opens in the
// right program: the one of its upload name when that is a plain one, else
// the usual one of its content type; "" when neither says.
func mediaExt(md synapse.Media) string {
	if md.UploadName != nil {
		ext := strings.ToLower(path.Ext(*md.UploadName))
		plain := len(ext) >= 2 && len(ext) <= 9
		for i := 1; plain && i < len(ext); i++ {
			plain = ext[i] >= 'a' && ext[i] <= 'z' || ext[i] >= '0' && ext[i] <= '9'
		}
		if plain {
			return ext
		}
	}
	typ, _, _ := strings.Cut(md.MediaType, ";")
	// Go's table lists several for some types (image/jpeg: .jfif, .jpe,
	// .jpeg, .jpg): these are the ones people expect.
	switch typ = strings.ToLower(strings.TrimSpace(typ)); typ {
	case "image/jpeg":
		return ".jpg"
	case "text/plain":
		return ".txt"
	case "application/octet-stream":
		return ".bin"
	}
	if exts, err := mime.ExtensionsByType(typ); err == nil && len(exts) > 0 {
		return exts[0]
	}
	return ""
}

// ---------------------------------------------------------------- index

// bundleIndex is index.csv: which folder holds which user's bundle, over
// every run into the same directory, so a resumed run finds its folders and
// a new user never takes another's.
type bundleIndex struct {
	users    []string          // in the order first seen
	byUser   map[string]string // user id -> folder
	byFolder map[string]string // folder -> user id
}

func loadBundleIndex(out string) (*bundleIndex, error) {
	idx := &bundleIndex{byUser: map[string]string{}, byFolder: map[string]string{}}
	p := filepath.Join(out, indexName)
	f, err := nofollow.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (repair or remove it)", p, err)
	}
	for i, row := range rows {
		if i == 0 {
			if row[0] != "user_id" || row[1] != "folder" {
				return nil, fmt.Errorf("%s: header is %q, want user_id,folder", p, strings.Join(row, ","))
			}
			continue
		}
		id, folder := formats.Unescape(row[0]), formats.Unescape(row[1])
		if !safeFolder(folder) {
			return nil, fmt.Errorf("%s line %d: folder %q is not a plain folder name (repair or remove the line)", p, i+1, folder)
		}
		if other, ok := idx.byFolder[folder]; ok && other != id {
			return nil, fmt.Errorf("%s line %d: folder %q is given to both %s and %s", p, i+1, folder, other, id)
		}
		if prev, ok := idx.byUser[id]; ok && prev != folder {
			return nil, fmt.Errorf("%s line %d: %s is given both %q and %q", p, i+1, id, prev, folder)
		}
		idx.add(id, folder)
	}
	return idx, nil
}

func (idx *bundleIndex) add(id, folder string) {
	if _, ok := idx.byUser[id]; !ok {
		idx.users = append(idx.users, id)
	}
	idx.byUser[id] = folder
	idx.byFolder[folder] = id
}

// assign gives each user its folder: the one an earlier run gave it, or a
// new folderName, with a longer hash in the unlikely case that one is taken.
func (idx *bundleIndex) assign(users []string) ([]string, error) {
	out := make([]string, len(users))
	for i, id := range users {
		if f, ok := idx.byUser[id]; ok {
			out[i] = f
			continue
		}
		for _, n := range []int{10, 20, 64} {
			f := folderName(id, n)
			if _, taken := idx.byFolder[f]; !taken {
				out[i] = f
				break
			}
		}
		if out[i] == "" {
			return nil, fmt.Errorf("no free folder name for %s", id)
		}
		idx.add(id, out[i])
	}
	return out, nil
}

func (idx *bundleIndex) write(out string) error {
	_, _, err := saveAtomic(out, indexName, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		// Cells are guarded as every CSV synbatch writes: a person opens
		// this file in a spreadsheet, where an id or folder starting with
		// = + - @ would run as a formula. loadBundleIndex (and
		// formats.Unescape, for other programs) takes the guard off.
		if err := cw.Write([]string{"user_id", "folder"}); err != nil {
			return err
		}
		for _, id := range idx.users {
			if err := cw.Write([]string{formats.Escape(id), formats.Escape(idx.byUser[id])}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	return fsyncDir(out)
}

// ---------------------------------------------------------------- files

// diskError marks a failure of the local file system: fatal, since every
// later user would meet it too (a full disk, a read-only directory).
type diskError struct{ err error }

func (e *diskError) Error() string { return e.err.Error() }
func (e *diskError) Unwrap() error { return e.err }

func diskErr(err error) error { return &diskError{err} }

func isDiskErr(err error) bool {
	var d *diskError
	return errors.As(err, &d)
}

// hashingFile counts and hashes what is written to f, and marks the file's
// own write errors as disk errors (a download's errors pass through fill).
type hashingFile struct {
	f *os.File
	h hash.Hash
	n int64
}

func (w *hashingFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, diskErr(err)
	}
	return n, nil
}

// saveAtomic writes dir/name as restic's local backend saves a file: into a
// temporary file in the same directory, synced and closed, then renamed over
// name, so name never holds half a file. On an error the temporary file is
// removed. The caller syncs dir (fsyncDir) when the new entry must survive a
// crash; a bundle does it once for all its files, before the manifest.
// It returns the size and hex sha256 of what fill wrote.
func saveAtomic(dir, name string, fill func(io.Writer) error) (int64, string, error) {
	f, err := nofollow.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return 0, "", diskErr(fmt.Errorf("create %s: %w", filepath.Join(dir, name), err))
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	w := &hashingFile{f: f, h: sha256.New()}
	if err := fill(w); err != nil {
		return 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, "", diskErr(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return 0, "", diskErr(fmt.Errorf("close %s: %w", tmp, err))
	}
	if err := nofollow.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return 0, "", diskErr(fmt.Errorf("rename %s: %w", tmp, err))
	}
	done = true
	return w.n, hex.EncodeToString(w.h.Sum(nil)), nil
}

// saveJSON writes v indented, without HTML escaping (the server's strings
// stay as they were sent), and returns its manifest entry.
func saveJSON(dir, name string, v any) (ManifestFile, error) {
	size, sum, err := saveAtomic(dir, name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			if isDiskErr(err) {
				return err
			}
			return fmt.Errorf("encode %s: %w", name, err)
		}
		return nil
	})
	return ManifestFile{Path: name, Size: size, SHA256: sum}, err
}

// fsyncDir makes dir's entries durable. File systems that cannot sync a
// directory say so with EINVAL or ENOTSUP, which restic ignores too.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return diskErr(fmt.Errorf("sync %s: %w", dir, err))
	}
	err = d.Sync()
	cerr := d.Close()
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return diskErr(fmt.Errorf("sync %s: %w", dir, err))
	}
	if cerr != nil {
		return diskErr(fmt.Errorf("sync %s: %w", dir, cerr))
	}
	return nil
}

// ---------------------------------------------------------------- checks

// errOtherUser is a bundle in this user's place that belongs to someone else.
var errOtherUser = errors.New("holds another user's bundle")

// errNoBundle is a place with no bundle at all.
var errNoBundle = errors.New("no bundle")

// checkManifest parses a manifest and checks that it is one of ours, for
// userID (unless that is ""), with every document and only safe paths.
func checkManifest(data []byte, userID, where string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", where, err)
	}
	m.size = int64(len(data))
	if m.Format != bundleFormat {
		return nil, fmt.Errorf("%s: manifest.json: format %q, want %q", where, m.Format, bundleFormat)
	}
	if userID != "" && m.UserID != userID {
		return nil, fmt.Errorf("%s %w (%s), not %s's", where, errOtherUser, m.UserID, userID)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		p := f.Path
		if p == "" || !utf8.ValidString(p) || strings.Contains(p, `\`) || path.Clean(p) != p ||
			!filepath.IsLocal(filepath.FromSlash(p)) || p == manifestName || seen[p] || f.Size < 0 {
			return nil, fmt.Errorf("%s: manifest.json lists a bad or repeated path %q", where, p)
		}
		seen[p] = true
	}
	for _, d := range bundleDocs() {
		if !seen[d] {
			return nil, fmt.Errorf("%s: manifest.json does not list %s", where, d)
		}
	}
	return &m, nil
}

// checkFolder checks the bundle in dir: every listed file there with its
// size, and with deep its sha256 too. A resume checks sizes only: files are
// renamed into place whole, so a crash can lose a file but not cut one.
func checkFolder(dir, userID string, deep bool) (*Manifest, error) {
	data, err := readLimited(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, errNoBundle)
	}
	if err != nil {
		return nil, err
	}
	m, err := checkManifest(data, userID, dir)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return nil, fmt.Errorf("%s: %d bytes, the manifest says %d", p, fi.Size(), f.Size)
		}
		if deep {
			if err := hashFile(p, f); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// checkZip is checkFolder for a packed bundle, whose entries sit under folder/.
func checkZip(zipPath, folder, userID string, deep bool) (*Manifest, error) {
	zr, err := zip.OpenReader(zipPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", zipPath, errNoBundle)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zipPath, err)
	}
	defer zr.Close()
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		entries[f.Name] = f
	}
	mf := entries[folder+"/"+manifestName]
	if mf == nil {
		return nil, fmt.Errorf("%s: no %s/%s in it", zipPath, folder, manifestName)
	}
	data, err := readZipEntry(mf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zipPath, err)
	}
	m, err := checkManifest(data, userID, zipPath)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		e := entries[folder+"/"+f.Path]
		if e == nil {
			return nil, fmt.Errorf("%s: %s is missing", zipPath, f.Path)
		}
		if e.UncompressedSize64 != uint64(f.Size) {
			return nil, fmt.Errorf("%s: %s has %d bytes, the manifest says %d", zipPath, f.Path, e.UncompressedSize64, f.Size)
		}
		if deep {
			rc, err := e.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", zipPath, f.Path, err)
			}
			err = hashMatches(rc, f, zipPath+": "+f.Path)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// VerifyBundle checks a bundle (a folder, or a .zip that Archive made) in
// full: its manifest, and the size and sha256 of every file it lists. It
// returns the manifest.
func VerifyBundle(p string) (*Manifest, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return checkFolder(p, "", true)
	}
	return checkZip(p, strings.TrimSuffix(filepath.Base(p), ".zip"), "", true)
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, maxManifest)
	}
	return data, nil
}

func readZipEntry(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", f.Name, maxManifest)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifest+1))
}

func hashFile(p string, f ManifestFile) error {
	r, err := os.Open(p)
	if err != nil {
		return err
	}
	defer r.Close()
	return hashMatches(r, f, p)
}

func hashMatches(r io.Reader, f ManifestFile, where string) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, f.SHA256) {
		return fmt.Errorf("%s: sha256 %s, the manifest says %s", where, got, f.SHA256)
	}
	return nil
}

// ---------------------------------------------------------------- zip

// pack writes Out/<folder>.zip (atomically) from the files the manifest
// lists, then removes the folder: once the zip is on disk it is the bundle.
// Entries sit under <folder>/ so that unpacking gives the folder back.
// Media is stored as is (mostly compressed already), JSON deflated.
func (b *bundler) pack(folder string, m *Manifest) error {
	dir := filepath.Join(b.out, folder)
	files := append([]ManifestFile{}, m.Files...)
	files = append(files, ManifestFile{Path: manifestName})
	_, _, err := saveAtomic(b.out, folder+".zip", func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, f := range files {
			if err := addToZip(zw, dir, folder, f.Path); err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("zip %s: %w", folder, err)
		}
		return nil
	})
	if err != nil {
		return diskErrIfNot(err)
	}
	if err := fsyncDir(b.out); err != nil {
		return err
	}
	if err := nofollow.RemoveAll(dir); err != nil {
		return diskErr(fmt.Errorf("remove %s after packing it: %w", dir, err))
	}
	return nil
}

func addToZip(zw *zip.Writer, dir, folder, rel string) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	src, err := nofollow.Open(p)
	if err != nil {
		return diskErr(err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return diskErr(err)
	}
	hdr, err := zip.FileInfoHeader(fi)
	if err != nil {
		return diskErr(err)
	}
	hdr.Name = folder + "/" + rel
	hdr.SetMode(0o600)
	hdr.Method = zip.Deflate
	if strings.HasPrefix(rel, mediaDir+"/") {
		hdr.Method = zip.Store
	}
	dst, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return diskErr(fmt.Errorf("zip %s: %w", p, err))
	}
	return nil
}

// diskErrIfNot treats any packing failure as the disk's: the zip reads and
// writes only local files.
func diskErrIfNot(err error) error {
	if isDiskErr(err) {
		return err
	}
	return diskErr(err)
}
