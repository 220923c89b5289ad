package export

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// bundleMedia is one upload the fake serves.
type bundleMedia struct {
	id, quarantinedBy string
	body              []byte
	gone              bool   // listed, but the download is a 404
	listedSHA         string // overrides the listed sha256
}

// bundleFake is a homeserver with just the endpoints a bundle reads.
type bundleFake struct {
	*httptest.Server
	mu     sync.Mutex
	users  map[string][]bundleMedia
	hits   map[string]int // requests per user id (downloads per media id)
	total  int
	fault  func(w http.ResponseWriter, r *http.Request) bool
	server string
}

func newBundleFake(t *testing.T, users ...string) *bundleFake {
	f := &bundleFake{users: map[string][]bundleMedia{}, hits: map[string]int{}, server: "hs"}
	for _, u := range users {
		f.users[u] = nil
	}
	mux := http.NewServeMux()
	js := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // as Synapse sends it
		_ = enc.Encode(v)
	}
	user := func(h func(w http.ResponseWriter, r *http.Request, id string, media []bundleMedia)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			f.mu.Lock()
			media, ok := f.users[id]
			f.hits[id]++
			f.mu.Unlock()
			if !ok {
				js(w, 404, map[string]string{"errcode": "M_NOT_FOUND", "error": "User not found"})
				return
			}
			h(w, r, id, media)
		}
	}
	const a = "GET /_synapse/admin"
	mux.HandleFunc(a+"/v2/users/{id}", user(func(w http.ResponseWriter, _ *http.Request, id string, _ []bundleMedia) {
		js(w, 200, map[string]any{"name": id, "threepids": []any{}, "external_ids": []any{}, "future_field": "<kept>"})
	}))
	mux.HandleFunc(a+"/v2/users/{id}/devices", user(func(w http.ResponseWriter, _ *http.Request, id string, _ []bundleMedia) {
		js(w, 200, map[string]any{"devices": []any{map[string]string{"device_id": "DEV", "user_id": id}}, "total": 1})
	}))
	mux.HandleFunc(a+"/v1/whois/{id}", user(func(w http.ResponseWriter, _ *http.Request, id string, _ []bundleMedia) {
		js(w, 200, map[string]any{"user_id": id, "devices": map[string]any{}})
	}))
	mux.HandleFunc(a+"/v1/users/{id}/joined_rooms", user(func(w http.ResponseWriter, _ *http.Request, _ string, _ []bundleMedia) {
		js(w, 200, map[string]any{"joined_rooms": []string{"!r1:hs", "!gone:hs"}, "total": 2})
	}))
	mux.HandleFunc(a+"/v1/rooms/{room}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("room") == "!gone:hs" {
			js(w, 404, map[string]string{"errcode": "M_NOT_FOUND", "error": "Room not found"})
			return
		}
		js(w, 200, map[string]any{"room_id": r.PathValue("room"), "name": "Room & <one>", "canonical_alias": "#one:hs"})
	})
	mux.HandleFunc(a+"/v1/users/{id}/accountdata", user(func(w http.ResponseWriter, _ *http.Request, _ string, _ []bundleMedia) {
		js(w, 200, map[string]any{"account_data": map[string]any{"global": map[string]any{"m.direct": map[string]any{}},
			"rooms": map[string]any{"!r1:hs": map[string]any{"m.fully_read": map[string]string{"event_id": "$e"}}}}})
	}))
	mux.HandleFunc(a+"/v1/users/{id}/pushers", user(func(w http.ResponseWriter, _ *http.Request, _ string, _ []bundleMedia) {
		js(w, 200, map[string]any{"pushers": []any{}, "total": 0})
	}))
	mux.HandleFunc(a+"/v1/users/{id}/override_ratelimit", user(func(w http.ResponseWriter, _ *http.Request, _ string, _ []bundleMedia) {
		js(w, 200, map[string]any{})
	}))
	mux.HandleFunc(a+"/v1/users/{id}/media", user(func(w http.ResponseWriter, r *http.Request, id string, media []bundleMedia) {
		q := r.URL.Query()
		if q.Get("order_by") != "created_ts" || q.Get("dir") != "f" {
			js(w, 400, map[string]string{"errcode": "M_INVALID_PARAM", "error": "want oldest first"})
			return
		}
		from, _ := strconv.Atoi(q.Get("from"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 100
		}
		end := min(from+limit, len(media))
		var page []map[string]any
		for i, m := range media[min(from, len(media)):end] {
			sum := sha256.Sum256(m.body)
			sha := hex.EncodeToString(sum[:])
			if m.listedSHA != "" {
				sha = m.listedSHA
			}
			var qb any
			if m.quarantinedBy != "" {
				qb = m.quarantinedBy
			}
			page = append(page, map[string]any{"media_id": m.id, "media_length": len(m.body), "media_type": "application/octet-stream",
				"created_ts": 1000 + from + i, "quarantined_by": qb, "url_cache": nil, "upload_name": m.id + ".bin", "sha256": sha})
		}
		out := map[string]any{"media": page, "total": len(media)}
		if end < len(media) {
			out["next_token"] = end
		}
		js(w, 200, out)
	}))
	mux.HandleFunc("GET /_matrix/client/v1/media/download/{server}/{media}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.PathValue("media")]++
		var found *bundleMedia
		for _, ms := range f.users {
			for i := range ms {
				if ms[i].id == r.PathValue("media") && r.PathValue("server") == f.server {
					found = &ms[i]
				}
			}
		}
		f.mu.Unlock()
		if found == nil || found.gone || found.quarantinedBy != "" {
			js(w, 404, map[string]string{"errcode": "M_NOT_FOUND", "error": "Not found"})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(found.body)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.total++
		fault := f.fault
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer admin" {
			js(w, 401, map[string]string{"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"})
			return
		}
		if fault != nil && fault(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *bundleFake) client(t *testing.T, timeout time.Duration) *synapse.Client {
	t.Helper()
	c, err := synapse.New(synapse.Config{Server: f.URL, Token: "admin", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *bundleFake) addMedia(user string, ms ...bundleMedia) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[user] = append(f.users[user], ms...)
}

func (f *bundleFake) hitsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *bundleFake) setFault(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

func runBundles(t *testing.T, f *bundleFake, cfg BundleConfig) []BundleResult {
	t.Helper()
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = time.Millisecond
	}
	res, err := Bundles(context.Background(), f.client(t, 0), cfg)
	if err != nil {
		t.Fatalf("Bundles: %v", err)
	}
	return res
}

func bundlesOK(t *testing.T, res []BundleResult) {
	t.Helper()
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.UserID, r.Err)
		}
	}
}

func TestFolderName(t *testing.T) {
	ids := []string{"@../../x:hs", "@a/b:hs", "@..:hs", "@.:hs", "@a_b:hs", "@A_b:hs", "@a/b:other", "@:hs", "@x",
		"@" + strings.Repeat("z", 300) + ":hs", "@" + strings.Repeat("z", 300) + "y:hs", `@a\b:hs`, "@émile:hs", "@a\x00b:hs",
		"@index.csv:hs", "@con:hs", "@-:hs", "@.hidden:hs"}
	seen := map[string]string{}
	for _, id := range ids {
		name := folderName(id, 10)
		if !safeFolder(name) || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.HasPrefix(name, ".") ||
			len(name) > 64 || name != strings.ToLower(name) || !filepath.IsLocal(name) {
			t.Errorf("%q -> unsafe folder %q", id, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%q and %q share folder %q", id, other, name)
		}
		seen[name] = id
		if folderName(id, 10) != name {
			t.Errorf("%q: folder name is not stable", id)
		}
	}
	for id, want := range map[string]string{"@../../x:hs": "_._.._x-", "@a/b:hs": "a_b-", "@john.smith:hs": "john.smith-", "@..:hs": "_.-"} {
		if got := folderName(id, 10); !strings.HasPrefix(got, want) {
			t.Errorf("folderName(%q) = %q, want prefix %q", id, got, want)
		}
	}
}

func TestHostileIDsStayInsideOut(t *testing.T) {
	ids := []string{"@../../x:hs", "@a/b:hs", "@..:hs", "@a_b:hs", "@./.:hs"}
	f := newBundleFake(t, ids...)
	for i, id := range ids {
		f.addMedia(id, bundleMedia{id: fmt.Sprintf("M%d", i), body: []byte(id)})
	}
	root := t.TempDir()
	out := filepath.Join(root, "deep", "out")
	res := runBundles(t, f, BundleConfig{Out: out, Users: ids, Concurrency: 3, Media: true})
	bundlesOK(t, res)
	folders := map[string]bool{}
	for _, r := range res {
		if filepath.Dir(r.Path) != out || folders[r.Folder] {
			t.Errorf("%s: path %s", r.UserID, r.Path)
		}
		folders[r.Folder] = true
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(out, p)
		if err == nil && p != root && p != filepath.Dir(out) && p != out && !filepath.IsLocal(rel) {
			t.Errorf("written outside Out: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := loadBundleIndex(out)
	if err != nil || len(idx.users) != len(ids) {
		t.Fatalf("index: %v %+v", err, idx)
	}
	for _, r := range res {
		if idx.byUser[r.UserID] != r.Folder {
			t.Errorf("index gives %s folder %q, result %q", r.UserID, idx.byUser[r.UserID], r.Folder)
		}
	}
}

func TestBundleContents(t *testing.T) {
	f := newBundleFake(t, "@u:hs")
	var bodies [][]byte
	for i := range 5 {
		b := bytes.Repeat([]byte{byte('a' + i)}, 100*(i+1))
		bodies = append(bodies, b)
		m := bundleMedia{id: fmt.Sprintf("Med%d", i), body: b}
		switch i {
		case 1:
			m.quarantinedBy = "@mod:hs"
		case 3:
			m.gone = true
		}
		f.addMedia("@u:hs", m)
	}
	var progress []int
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@u:hs"}, Media: true, MediaPageSize: 2,
		Tool: "synbatch test", Progress: func(n int) { progress = append(progress, n) }})
	bundlesOK(t, res)
	r := res[0]
	m, err := VerifyBundle(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Tool != "synbatch test" || !m.Media || m.UserID != "@u:hs" || m.Created.IsZero() || len(m.SkippedMedia) != 2 {
		t.Errorf("manifest %+v", m)
	}
	if r.Files != len(m.Files)+1 || len(m.Files) != len(bundleDocs())+4 || !slices.Equal(progress, []int{1}) {
		t.Errorf("files %d, manifest lists %d, progress %v", r.Files, len(m.Files), progress)
	}
	var total int64
	filepath.WalkDir(r.Path, func(p string, d os.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	if total != r.Bytes {
		t.Errorf("Bytes %d, files on disk %d", r.Bytes, total)
	}
	// Notes: the quarantined file, the vanished one, the room without details.
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"Med1: quarantined by @mod:hs", "Med3: not found", "!gone:hs"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	for _, i := range []int{0, 2, 4} {
		b, err := os.ReadFile(filepath.Join(r.Path, "media", fmt.Sprintf("Med%d.bin", i)))
		if err != nil || !bytes.Equal(b, bodies[i]) {
			t.Errorf("media %d: %v", i, err)
		}
	}
	if f.hitsOf("Med1") != 0 {
		t.Error("a quarantined file was requested")
	}
	var list struct {
		Media []struct {
			MediaID string `json:"media_id"`
		} `json:"media"`
		Total int `json:"total"`
	}
	b, _ := os.ReadFile(filepath.Join(r.Path, "media.json"))
	_ = json.Unmarshal(b, &list)
	if list.Total != 5 || len(list.Media) != 5 || list.Media[0].MediaID != "Med0" || list.Media[4].MediaID != "Med4" {
		t.Errorf("media.json: %s", b)
	}
	// The server's own text is kept as sent: unknown fields, no HTML escapes.
	for name, want := range map[string]string{"user.json": `"future_field": "<kept>"`, "rooms.json": `"name": "Room & <one>"`,
		"account_data.json": `"m.fully_read"`} {
		b, _ := os.ReadFile(filepath.Join(r.Path, name))
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s:\n%s", name, want, b)
		}
	}
}

func TestManifestVerification(t *testing.T) {
	f := newBundleFake(t, "@u:hs")
	f.addMedia("@u:hs", bundleMedia{id: "M", body: []byte("media body")})
	out := t.TempDir()
	res := runBundles(t, f, BundleConfig{Out: out, Users: []string{"@u:hs"}, Media: true})
	bundlesOK(t, res)
	dir := res[0].Path
	pristine := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			pristine[p], _ = os.ReadFile(p)
		}
		return nil
	})
	restore := func() {
		os.RemoveAll(dir)
		for p, b := range pristine {
			os.MkdirAll(filepath.Dir(p), 0o700)
			os.WriteFile(p, b, 0o600)
		}
	}
	editManifest := func(edit func(m map[string]any)) {
		var m map[string]any
		_ = json.Unmarshal(pristine[filepath.Join(dir, manifestName)], &m)
		edit(m)
		b, _ := json.Marshal(m)
		os.WriteFile(filepath.Join(dir, manifestName), b, 0o600)
	}
	cases := []struct {
		name       string
		damage     func()
		resumeOK   bool // the size-only check a resume does
		otherOwner bool
	}{
		{"intact", func() {}, true, false},
		{"no manifest", func() { os.Remove(filepath.Join(dir, manifestName)) }, false, false},
		{"torn manifest", func() { os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"format":"synbatch-bun`), 0o600) }, false, false},
		{"file missing", func() { os.Remove(filepath.Join(dir, "devices.json")) }, false, false},
		{"media missing", func() { os.Remove(filepath.Join(dir, "media", "M.bin")) }, false, false},
		{"file longer", func() {
			os.WriteFile(filepath.Join(dir, "rooms.json"), append(pristine[filepath.Join(dir, "rooms.json")], ' '), 0o600)
		}, false, false},
		{"same size, other bytes", func() {
			os.WriteFile(filepath.Join(dir, "media", "M.bin"), []byte("MEDIA BODY"), 0o600)
		}, true, false},
		{"a document not listed", func() {
			editManifest(func(m map[string]any) {
				m["files"] = slices.DeleteFunc(m["files"].([]any), func(x any) bool { return x.(map[string]any)["path"] == "pushers.json" })
			})
		}, false, false},
		{"path leaves the folder", func() {
			editManifest(func(m map[string]any) {
				m["files"] = append(m["files"].([]any), map[string]any{"path": "../index.csv", "size": 1, "sha256": "00"})
			})
		}, false, false},
		{"absolute path", func() {
			editManifest(func(m map[string]any) {
				m["files"] = append(m["files"].([]any), map[string]any{"path": "/etc/passwd", "size": 1, "sha256": "00"})
			})
		}, false, false},
		{"other format", func() { editManifest(func(m map[string]any) { m["format"] = "something/2" }) }, false, false},
		{"other user", func() { editManifest(func(m map[string]any) { m["user_id"] = "@v:hs" }) }, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			restore()
			c.damage()
			_, err := checkFolder(dir, "@u:hs", false)
			if (err == nil) != c.resumeOK {
				t.Errorf("resume check: %v", err)
			}
			if errors.Is(err, errOtherUser) != c.otherOwner {
				t.Errorf("other owner: %v", err)
			}
			_, err = VerifyBundle(dir)
			if wantOK := c.name == "intact" || c.otherOwner; (err == nil) != wantOK {
				t.Errorf("full verify: %v", err)
			}
		})
	}
}

func TestResumeSkipsCompleteRedoesHalf(t *testing.T) {
	users := []string{"@a:hs", "@b:hs", "@c:hs"}
	f := newBundleFake(t, users...)
	for _, u := range users {
		f.addMedia(u, bundleMedia{id: "M" + u[1:2], body: []byte("body of " + u)})
	}
	out := t.TempDir()
	cfg := BundleConfig{Out: out, Users: users, Concurrency: 2}
	res := runBundles(t, f, cfg)
	bundlesOK(t, res)

	// b: killed before its manifest; c: no media, but media is wanted now.
	os.Remove(filepath.Join(res[1].Path, manifestName))
	os.WriteFile(filepath.Join(res[1].Path, ".user.json.tmp-123"), []byte("half"), 0o600)
	before := map[string]int{}
	for _, u := range users {
		before[u] = f.hitsOf(u)
	}
	res2 := runBundles(t, f, cfg)
	bundlesOK(t, res2)
	if !res2[0].Skipped || res2[1].Skipped || !res2[2].Skipped {
		t.Fatalf("skipped: %v %v %v", res2[0].Skipped, res2[1].Skipped, res2[2].Skipped)
	}
	if f.hitsOf("@a:hs") != before["@a:hs"] || f.hitsOf("@b:hs") == before["@b:hs"] {
		t.Errorf("requests for a: %d, for b: %d", f.hitsOf("@a:hs")-before["@a:hs"], f.hitsOf("@b:hs")-before["@b:hs"])
	}
	if res2[0].Files != res[0].Files || res2[0].Bytes != res[0].Bytes {
		t.Errorf("a skipped bundle counts %d files %d bytes, first run %d %d", res2[0].Files, res2[0].Bytes, res[0].Files, res[0].Bytes)
	}
	if _, err := os.Stat(filepath.Join(res2[1].Path, ".user.json.tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the half bundle's leftovers survived its redo")
	}
	if _, err := VerifyBundle(res2[1].Path); err != nil {
		t.Error(err)
	}

	cfg.Media, cfg.Users = true, users[2:]
	res3 := runBundles(t, f, cfg)
	bundlesOK(t, res3)
	if res3[0].Skipped {
		t.Error("a bundle without media counted as complete for a run with media")
	}
	if m, err := VerifyBundle(res3[0].Path); err != nil || !m.Media {
		t.Errorf("redone with media: %+v %v", m, err)
	}
	// A run without media takes the bundle with media as complete.
	cfg.Media = false
	if res4 := runBundles(t, f, cfg); !res4[0].Skipped {
		t.Error("a bundle with media was redone for a run without")
	}
}

func TestArchive(t *testing.T) {
	f := newBundleFake(t, "@a:hs", "@b:hs")
	f.addMedia("@a:hs", bundleMedia{id: "MA", body: bytes.Repeat([]byte("z"), 5000)})
	out := t.TempDir()
	// b was exported as a folder by an earlier run without --archive.
	first := runBundles(t, f, BundleConfig{Out: out, Users: []string{"@b:hs"}})
	cfg := BundleConfig{Out: out, Users: []string{"@a:hs", "@b:hs"}, Media: false, Archive: true}
	res := runBundles(t, f, cfg)
	bundlesOK(t, res)
	for _, r := range res {
		if r.Path != filepath.Join(out, r.Folder+".zip") {
			t.Errorf("%s: path %s", r.UserID, r.Path)
		}
		if _, err := os.Stat(filepath.Join(out, r.Folder)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: folder kept beside the zip", r.UserID)
		}
		if m, err := VerifyBundle(r.Path); err != nil || m.UserID != r.UserID {
			t.Errorf("%s: %v", r.UserID, err)
		}
	}
	if !res[1].Skipped || len(res[1].Notes) != 1 || res[1].Bytes != first[0].Bytes {
		t.Errorf("b should have been packed from its folder: %+v", res[1])
	}
	zr, err := zip.OpenReader(res[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range zr.File {
		if !strings.HasPrefix(e.Name, res[0].Folder+"/") || !filepath.IsLocal(e.Name) || strings.Contains(e.Name, ".tmp-") {
			t.Errorf("zip entry %q", e.Name)
		}
	}
	zr.Close()

	res2 := runBundles(t, f, cfg)
	if !res2[0].Skipped || !res2[1].Skipped {
		t.Fatalf("second run: %+v", res2)
	}
	// A cut zip is not a bundle: redone.
	b, _ := os.ReadFile(res[0].Path)
	os.WriteFile(res[0].Path, b[:len(b)/2], 0o600)
	res3 := runBundles(t, f, cfg)
	if res3[0].Skipped || res3[0].Err != nil {
		t.Fatalf("cut zip: %+v", res3[0])
	}
	if _, err := VerifyBundle(res3[0].Path); err != nil {
		t.Error(err)
	}
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	size, sum, err := saveAtomic(dir, "f.json", func(w io.Writer) error { _, err := io.WriteString(w, "old"); return err })
	want := sha256.Sum256([]byte("old"))
	if err != nil || size != 3 || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("%d %s %v", size, sum, err)
	}
	// A write that fails half way leaves the old file whole and no temp file.
	boom := errors.New("boom")
	_, _, err = saveAtomic(dir, "f.json", func(w io.Writer) error {
		io.WriteString(w, "new and half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f.json")); string(b) != "old" {
		t.Errorf("after a failed write: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "f.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// A directory that cannot be written is a disk error (fatal to a run).
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		if _, _, err := saveAtomic(ro, "x", func(io.Writer) error { return nil }); !isDiskErr(err) {
			t.Errorf("read-only dir: %v", err)
		}
	}
}

func TestIndexAcrossRuns(t *testing.T) {
	f := newBundleFake(t, "@a:hs", "@b:hs")
	out := t.TempDir()
	r1 := runBundles(t, f, BundleConfig{Out: out, Users: []string{"@a:hs"}})
	r2 := runBundles(t, f, BundleConfig{Out: out, Users: []string{"@b:hs", "@a:hs"}})
	b, _ := os.ReadFile(filepath.Join(out, indexName))
	// Ids are formula-guarded as in every CSV synbatch writes.
	want := fmt.Sprintf("user_id,folder\n'@a:hs,%s\n'@b:hs,%s\n", r1[0].Folder, r2[0].Folder)
	if string(b) != want || r2[1].Folder != r1[0].Folder {
		t.Errorf("index.csv:\n%s\nwant:\n%s", b, want)
	}
	// A folder taken (in the index) by another id: the new user gets a longer hash.
	os.WriteFile(filepath.Join(out, indexName), []byte(want+"@z:hs,"+folderName("@c:hs", 10)+"\n"), 0o600)
	idx, err := loadBundleIndex(out)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := idx.assign([]string{"@c:hs"})
	if got[0] != folderName("@c:hs", 20) {
		t.Errorf("collision: got %q", got[0])
	}
	// An index that points outside Out stops the run before anything is touched.
	for _, bad := range []string{"../evil", "/tmp/x", ".", "..", "a/b", ".hidden"} {
		os.WriteFile(filepath.Join(out, indexName), []byte("user_id,folder\n@a:hs,"+bad+"\n"), 0o600)
		if _, err := Bundles(context.Background(), f.client(t, 0), BundleConfig{Out: out, Users: []string{"@a:hs"}}); err == nil {
			t.Errorf("index folder %q was accepted", bad)
		}
	}
}

func TestFailuresRetriesAndFatal(t *testing.T) {
	f := newBundleFake(t, "@a:hs", "@b:hs", "@c:hs")
	var mu sync.Mutex
	failed := map[string]int{}
	// Every devices request fails twice with a 502 before it answers.
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/devices") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if failed[r.URL.Path]++; failed[r.URL.Path] <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	out := t.TempDir()
	var progress []int
	res := runBundles(t, f, BundleConfig{Out: out, Users: []string{"@a:hs", "@ghost:hs", "not-an-id", "@b:hs"}, Concurrency: 2,
		Progress: func(n int) { progress = append(progress, n) }})
	if res[0].Err != nil || res[3].Err != nil {
		t.Fatalf("retried users failed: %v %v", res[0].Err, res[3].Err)
	}
	if !synapse.IsNotFound(res[1].Err) || !strings.Contains(res[1].Err.Error(), "@ghost:hs: user.json") {
		t.Errorf("ghost: %v", res[1].Err)
	}
	if res[2].Err == nil {
		t.Error("a malformed id was exported")
	}
	if _, err := os.Stat(filepath.Join(out, res[1].Folder)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed user's folder was left behind")
	}
	if !slices.Equal(progress, []int{1, 2, 3, 4}) {
		t.Errorf("progress %v", progress)
	}

	// A 403 "not a server admin" stops the run; the users it did not finish say so.
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}`)
		return true
	})
	users := []string{"@c:hs", "@x1:hs", "@x2:hs", "@x3:hs", "@x4:hs"}
	res, err := Bundles(context.Background(), f.client(t, 0), BundleConfig{Out: out, Users: users, Concurrency: 2})
	if !synapse.IsAuth(err) || len(res) != len(users) {
		t.Fatalf("want an auth error, got %v (%d results)", err, len(res))
	}
	for _, r := range res {
		if r.Err == nil {
			t.Errorf("%s: no error", r.UserID)
		}
	}
	if !errors.Is(res[len(res)-1].Err, ErrNotRun) {
		t.Errorf("last user: %v", res[len(res)-1].Err)
	}

	// A 500 that does not go away fails the user after MaxAttempts tries.
	var pushers atomic.Int64
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/pushers") {
			pushers.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	res = runBundles(t, f, BundleConfig{Out: out, Users: []string{"@c:hs"}, MaxAttempts: 3})
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "pushers.json: after 3 attempts") || pushers.Load() != 3 {
		t.Errorf("err %v after %d tries", res[0].Err, pushers.Load())
	}
}

func TestCancelled(t *testing.T) {
	f := newBundleFake(t, "@a:hs")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Bundles(ctx, f.client(t, 0), BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}})
	if !errors.Is(err, context.Canceled) || len(res) != 1 || !errors.Is(res[0].Err, ErrNotRun) {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestMediaMismatchFailsTheUser(t *testing.T) {
	f := newBundleFake(t, "@a:hs", "@b:hs")
	f.addMedia("@a:hs", bundleMedia{id: "Bad", body: []byte("abc"), listedSHA: strings.Repeat("0", 64)})
	f.addMedia("@b:hs", bundleMedia{id: "Good", body: []byte("abc")})
	res := runBundles(t, f, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs", "@b:hs"}, Media: true, MaxAttempts: 2})
	if !errors.Is(res[0].Err, errMismatch) || f.hitsOf("Bad") != 2 || res[1].Err != nil {
		t.Fatalf("a: %v (%d downloads); b: %v", res[0].Err, f.hitsOf("Bad"), res[1].Err)
	}
}

// TestSlowDownloadIsNotCutOff shows the client's per-request timeout bounds
// silence, not the whole download: a file trickling in for longer passes,
// one that stops arriving fails.
func TestSlowDownloadIsNotCutOff(t *testing.T) {
	f := newBundleFake(t, "@a:hs")
	body := bytes.Repeat([]byte("0123456789"), 100)
	f.addMedia("@a:hs", bundleMedia{id: "Slow", body: body})
	var stall atomic.Bool
	f.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/media/download/") {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		for i := 0; i < len(body); i += 100 {
			if stall.Load() && i == 500 {
				time.Sleep(700 * time.Millisecond)
				return true
			}
			w.Write(body[i : i+100])
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond) // 600ms in all, against a 250ms timeout
		}
		return true
	})
	c := f.client(t, 250*time.Millisecond)
	res, err := Bundles(context.Background(), c, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Media: true})
	if err != nil || res[0].Err != nil {
		t.Fatalf("slow download: %v %v", err, res[0].Err)
	}
	stall.Store(true)
	res, err = Bundles(context.Background(), c, BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Media: true,
		MaxAttempts: 1})
	var ne *synapse.NetError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "no data for") {
		t.Fatalf("stalled download: %v", err)
	}
	_ = res
}

// TestStopFinishesBundlesInFlightStartsNoOther: a closed Stop (the first
// Ctrl-C of export data) lets the bundle in flight finish, complete and
// verifiable, starts no other user, and says the run stopped; a later
// run skips the finished bundle and exports the rest.
func TestStopFinishesBundlesInFlightStartsNoOther(t *testing.T) {
	users := []string{"@a:hs", "@b:hs", "@c:hs"}
	f := newBundleFake(t, users...)
	stop := make(chan struct{})
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.fault = func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/_synapse/admin/v2/users/@a:hs/devices") {
			once.Do(func() { close(arrived) })
			<-release
		}
		return false
	}
	go func() {
		<-arrived
		close(stop)
		close(release)
	}()
	out := t.TempDir()
	res, err := Bundles(context.Background(), f.client(t, 0), BundleConfig{Out: out, Users: users, Concurrency: 1, Stop: stop})
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("err %v, want ErrStopped", err)
	}
	if res[0].Err != nil {
		t.Fatalf("the bundle in flight: %v", res[0].Err)
	}
	if _, err := VerifyBundle(res[0].Path); err != nil {
		t.Fatalf("the bundle in flight is not complete: %v", err)
	}
	for _, r := range res[1:] {
		if !errors.Is(r.Err, ErrNotRun) || f.hitsOf(r.UserID) != 0 {
			t.Errorf("%s: %v after %d requests, want not started", r.UserID, r.Err, f.hitsOf(r.UserID))
		}
	}
	again, err := Bundles(context.Background(), f.client(t, 0), BundleConfig{Out: out, Users: users, Concurrency: 1})
	if err != nil || !again[0].Skipped || again[1].Err != nil || again[2].Err != nil {
		t.Fatalf("the next run: %v %+v", err, again)
	}
}

// TestStopDuringTheLastBundleStoppedNothing: a Stop that comes while the
// last bundle is in flight leaves nothing unexported: Bundles returns nil
// (exit 0), not ErrStopped.
func TestStopDuringTheLastBundleStoppedNothing(t *testing.T) {
	f := newBundleFake(t, "@a:hs")
	stop := make(chan struct{})
	var once sync.Once
	f.fault = func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/devices") {
			once.Do(func() { close(stop) })
		}
		return false
	}
	res, err := Bundles(context.Background(), f.client(t, 0), BundleConfig{Out: t.TempDir(), Users: []string{"@a:hs"}, Concurrency: 1, Stop: stop})
	if err != nil || res[0].Err != nil {
		t.Fatalf("err %v, bundle %v; want both nil", err, res[0].Err)
	}
	select {
	case <-stop:
	default:
		t.Fatal("the stop never came: the test proves nothing")
	}
}
