package integration

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/internal/testenv"
	"github.com/synbatch/synbatch/synapse"
)

// dataUser is an account the export tests made and logged in as.
type dataUser struct {
	id, token, device string
	room, roomName    string
	uploads           []dataUpload // oldest first
}

type dataUpload struct {
	mediaID string
	body    []byte
}

// dataCall sends a request as token and decodes a 2xx JSON answer into
// out; anything else fails the test.
func (e *env) dataCall(t *testing.T, method, path, token, ctype string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequest(method, e.server+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

func dataJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// newDataUser creates local, logs in (a device and a connection), and with
// full also makes a room with a message, global and room account data, and
// nUploads media files.
func (e *env) newDataUser(t *testing.T, local string, full bool, nUploads int) *dataUser {
	t.Helper()
	ctx := context.Background()
	u := &dataUser{id: e.id(local)}
	pw := "pw-" + strings.ReplaceAll(local, "/", "s") + "-Xy9"
	if _, err := e.client.PutUser(ctx, u.id, map[string]any{"password": pw}); err != nil {
		t.Fatalf("create %s: %v", u.id, err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	e.dataCall(t, http.MethodPost, "/_matrix/client/v3/login", "", "application/json", dataJSON(map[string]any{
		"type": "m.login.password", "password": pw, "identifier": map[string]string{"type": "m.id.user", "user": local}}), &login)
	u.token, u.device = login.AccessToken, login.DeviceID
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodPost, e.server+"/_matrix/client/v3/logout", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+u.token)
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
		}
	})
	uid := url.PathEscape(u.id)
	if full {
		u.roomName = "Export room <" + local + "> & co"
		var room struct {
			RoomID string `json:"room_id"`
		}
		e.dataCall(t, http.MethodPost, "/_matrix/client/v3/createRoom", u.token, "application/json",
			dataJSON(map[string]any{"name": u.roomName, "room_alias_name": strings.ReplaceAll(local, "/", "_")}), &room)
		u.room = room.RoomID
		rid := url.PathEscape(u.room)
		e.dataCall(t, http.MethodPut, "/_matrix/client/v3/rooms/"+rid+"/send/m.room.message/t1", u.token, "application/json",
			dataJSON(map[string]any{"msgtype": "m.text", "body": "hello from " + local}), nil)
		e.dataCall(t, http.MethodPut, "/_matrix/client/v3/user/"+uid+"/account_data/org.synbatch.test", u.token, "application/json",
			dataJSON(map[string]any{"global": local}), nil)
		e.dataCall(t, http.MethodPut, "/_matrix/client/v3/user/"+uid+"/rooms/"+rid+"/account_data/org.synbatch.room", u.token, "application/json",
			dataJSON(map[string]any{"room": local}), nil)
	}
	for i := range nUploads {
		body := make([]byte, 1000+i*70000) // one small file, then larger ones
		_, _ = rand.Read(body)
		var up struct {
			ContentURI string `json:"content_uri"`
		}
		// Synapse 1.160 has no /_matrix/client/v1/media/upload (M_UNRECOGNIZED).
		e.dataCall(t, http.MethodPost, "/_matrix/media/v3/upload?filename="+url.QueryEscape("f"+string(rune('a'+i))+".bin"),
			u.token, "application/octet-stream", body, &up)
		id, ok := strings.CutPrefix(up.ContentURI, "mxc://"+e.serverName+"/")
		if !ok {
			t.Fatalf("upload: content_uri %q", up.ContentURI)
		}
		u.uploads = append(u.uploads, dataUpload{mediaID: id, body: body})
		clockCut() // distinct created_ts, so the order is the upload order
	}
	if full || nUploads > 0 {
		e.awaitConnection(t, u.id)
	}
	return u
}

// awaitConnection waits until whois shows a connection of the user's:
// Synapse writes client IPs in batches, every 5 s, so an export right
// after the user's requests (CI's loaded machine) found none.
func (e *env) awaitConnection(t *testing.T, id string) {
	t.Helper()
	var raw []byte
	var err error
	if !testenv.Await(2*time.Minute, func() bool {
		raw, err = e.client.Whois(context.Background(), id)
		return err != nil || bytes.Contains(raw, []byte(`"ip"`))
	}) || err != nil {
		t.Fatalf("whois %s shows no connection after 2 minutes: %s %v", id, raw, err)
	}
}

func dataReadJSON(t *testing.T, p string, out any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

func dataExport(t *testing.T, c *synapse.Client, cfg export.BundleConfig) []export.BundleResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := export.Bundles(ctx, c, cfg)
	if err != nil {
		t.Fatalf("Bundles: %v", err)
	}
	return res
}

// dataCheckBundle checks u's bundle in dir against what the fixture made.
func dataCheckBundle(t *testing.T, dir string, u *dataUser, media bool) {
	t.Helper()
	m, err := export.VerifyBundle(dir)
	if err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	if m.UserID != u.id || m.Media != media {
		t.Fatalf("manifest: user %q media %v", m.UserID, m.Media)
	}
	var user struct {
		Name string `json:"name"`
	}
	dataReadJSON(t, filepath.Join(dir, "user.json"), &user)
	if user.Name != u.id {
		t.Errorf("user.json name %q", user.Name)
	}
	var devs struct {
		Devices []struct {
			DeviceID string `json:"device_id"`
		} `json:"devices"`
	}
	dataReadJSON(t, filepath.Join(dir, "devices.json"), &devs)
	if !slices.ContainsFunc(devs.Devices, func(d struct {
		DeviceID string `json:"device_id"`
	}) bool {
		return d.DeviceID == u.device
	}) {
		t.Errorf("devices.json lacks %s: %+v", u.device, devs)
	}
	var whois struct {
		UserID  string `json:"user_id"`
		Devices map[string]struct {
			Sessions []struct {
				Connections []struct {
					IP string `json:"ip"`
				} `json:"connections"`
			} `json:"sessions"`
		} `json:"devices"`
	}
	dataReadJSON(t, filepath.Join(dir, "connections.json"), &whois)
	if whois.UserID != u.id || len(whois.Devices) == 0 || len(whois.Devices[""].Sessions) == 0 ||
		len(whois.Devices[""].Sessions[0].Connections) == 0 {
		t.Errorf("connections.json: %+v", whois)
	}
	var rooms struct {
		Rooms []struct {
			RoomID         string  `json:"room_id"`
			Name           *string `json:"name"`
			CanonicalAlias *string `json:"canonical_alias"`
		} `json:"rooms"`
		Total int `json:"total"`
	}
	dataReadJSON(t, filepath.Join(dir, "rooms.json"), &rooms)
	if u.room != "" {
		if rooms.Total != 1 || len(rooms.Rooms) != 1 || rooms.Rooms[0].RoomID != u.room || rooms.Rooms[0].Name == nil ||
			*rooms.Rooms[0].Name != u.roomName || rooms.Rooms[0].CanonicalAlias == nil {
			t.Errorf("rooms.json: %+v", rooms)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, "rooms.json"))
		if !bytes.Contains(raw, []byte(u.roomName)) {
			t.Errorf("rooms.json escapes the room name: %s", raw)
		}
		var ad struct {
			Global map[string]map[string]string            `json:"global"`
			Rooms  map[string]map[string]map[string]string `json:"rooms"`
		}
		dataReadJSON(t, filepath.Join(dir, "account_data.json"), &ad)
		local := strings.TrimPrefix(strings.SplitN(u.id, ":", 2)[0], "@")
		if ad.Global["org.synbatch.test"]["global"] != local || ad.Rooms[u.room]["org.synbatch.room"]["room"] != local {
			t.Errorf("account_data.json: %+v", ad)
		}
	}
	var ml struct {
		Media []struct {
			MediaID     string `json:"media_id"`
			MediaLength int64  `json:"media_length"`
		} `json:"media"`
	}
	dataReadJSON(t, filepath.Join(dir, "media.json"), &ml)
	var got, want []string
	for _, x := range ml.Media {
		got = append(got, x.MediaID)
	}
	for _, up := range u.uploads {
		want = append(want, up.mediaID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("media.json lists %v, want %v (oldest first)", got, want)
	}
	for _, name := range []string{"pushers.json", "ratelimit.json"} {
		var v map[string]any
		dataReadJSON(t, filepath.Join(dir, name), &v)
	}
	if media {
		for _, up := range u.uploads {
			b, err := os.ReadFile(filepath.Join(dir, "media", up.mediaID+".bin"))
			if err != nil {
				t.Errorf("media %s: %v", up.mediaID, err)
			} else if !bytes.Equal(b, up.body) {
				t.Errorf("media %s: %d bytes differ from the %d uploaded", up.mediaID, len(b), len(up.body))
			}
		}
	}
}

func dataReadIndex(t *testing.T, out string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "index.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range rows[1:] {
		m[formats.Unescape(r[0])] = formats.Unescape(r[1]) // index cells are formula-guarded
	}
	return m
}

func TestExportDataBundle(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := uniq(t)
	u := e.newDataUser(t, p+"-full", true, 3)
	out := filepath.Join(t.TempDir(), "out")
	var progress []int
	cfg := export.BundleConfig{Out: out, Users: []string{u.id}, Concurrency: 2, Media: true,
		MediaPageSize: 2, // three uploads: two pages
		Progress:      func(done int) { progress = append(progress, done) }}
	start := time.Now()
	res := dataExport(t, e.client, cfg)
	t.Logf("exported in %s", time.Since(start))
	if len(res) != 1 || res[0].Err != nil || res[0].Skipped || len(res[0].Notes) != 0 {
		t.Fatalf("results %+v", res)
	}
	if res[0].Files != 10+3 || !slices.Equal(progress, []int{1}) {
		t.Errorf("files %d, progress %v", res[0].Files, progress)
	}
	dir := res[0].Path
	if filepath.Dir(dir) != out || dataReadIndex(t, out)[u.id] != filepath.Base(dir) {
		t.Fatalf("bundle at %s, index %v", dir, dataReadIndex(t, out))
	}
	dataCheckBundle(t, dir, u, true)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("bundle folder mode: %v %v", fi.Mode(), err)
	}

	// Again: complete, so skipped without a single request.
	// A client of its own: the shared one counts the parallel tests'
	// requests too.
	own := e.ownClient(t)
	res = dataExport(t, own, cfg)
	if !res[0].Skipped || res[0].Err != nil || own.Requests() != 0 {
		t.Fatalf("second run: %+v, %d requests", res[0], own.Requests())
	}

	// A bundle without its manifest is half-written: redone from nothing.
	if err := os.Remove(filepath.Join(dir, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stray.tmp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = dataExport(t, e.client, cfg)
	if res[0].Skipped || res[0].Err != nil {
		t.Fatalf("third run: %+v", res[0])
	}
	if _, err := os.Stat(filepath.Join(dir, "stray.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the redone bundle kept a stray file: %v", err)
	}
	dataCheckBundle(t, dir, u, true)
}

func TestExportDataHostileIDStaysInside(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := uniq(t)
	// Synapse takes '/' and '.' in a localpart, so "../" is a valid id.
	ids := []string{p + "/../../x", p + "/..", "../" + p}
	var users []*dataUser
	for _, l := range ids {
		users = append(users, e.newDataUser(t, l, false, 1))
	}
	root := t.TempDir()
	out := filepath.Join(root, "a", "out")
	var all []string
	for _, u := range users {
		all = append(all, u.id)
	}
	res := dataExport(t, e.client, export.BundleConfig{Out: out, Users: all, Concurrency: 3, Media: true})
	idx := dataReadIndex(t, out)
	seen := map[string]bool{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.UserID, r.Err)
		}
		if strings.ContainsAny(r.Folder, `/\`) || r.Folder == ".." || filepath.Dir(r.Path) != out || seen[r.Folder] || idx[r.UserID] != r.Folder {
			t.Errorf("%s: folder %q path %q index %q", r.UserID, r.Folder, r.Path, idx[r.UserID])
		}
		seen[r.Folder] = true
		dataCheckBundle(t, r.Path, users[i], true)
	}
	// Nothing anywhere under root but out and what is in it.
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if p != root && p != filepath.Dir(out) && !filepath.IsLocal(rel) && p != out {
			t.Errorf("written outside the output directory: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestExportDataArchive(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	u := e.newDataUser(t, uniq(t)+"-zip", true, 2)
	out := filepath.Join(t.TempDir(), "out")
	cfg := export.BundleConfig{Out: out, Users: []string{u.id}, Media: true, Archive: true}
	res := dataExport(t, e.client, cfg)
	r := res[0]
	if r.Err != nil || r.Path != filepath.Join(out, r.Folder+".zip") {
		t.Fatalf("result %+v", r)
	}
	if _, err := os.Stat(filepath.Join(out, r.Folder)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder is still there beside its zip: %v", err)
	}
	m, err := export.VerifyBundle(r.Path)
	if err != nil || m.UserID != u.id {
		t.Fatalf("verify zip: %v", err)
	}
	// Unpacked, the zip is the folder: the same checks pass on it.
	unpacked := t.TempDir()
	zr, err := zip.OpenReader(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) || !strings.HasPrefix(f.Name, r.Folder+"/") {
			t.Fatalf("zip entry %q", f.Name)
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		p := filepath.Join(unpacked, filepath.FromSlash(f.Name))
		_ = os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	zr.Close()
	dataCheckBundle(t, filepath.Join(unpacked, r.Folder), u, true)

	own := e.ownClient(t) // the shared client counts other tests' requests
	res = dataExport(t, own, cfg)
	if !res[0].Skipped || own.Requests() != 0 {
		t.Fatalf("second run: %+v, %d requests", res[0], own.Requests())
	}
	// Without --archive, the complete zip still counts.
	cfg.Archive = false
	res = dataExport(t, e.client, cfg)
	if !res[0].Skipped || res[0].Path != r.Path {
		t.Fatalf("run without archive: %+v", res[0])
	}
}

func TestExportDataQuarantinedAndMissing(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	p := uniq(t)
	u := e.newDataUser(t, p+"-q", false, 2)
	q := u.uploads[0].mediaID
	e.dataCall(t, http.MethodPost, "/_synapse/admin/v1/media/quarantine/"+e.serverName+"/"+q, e.dataAdminToken(t), "application/json", []byte("{}"), nil)
	ghost := e.id(p + "-nobody")
	out := filepath.Join(t.TempDir(), "out")
	res := dataExport(t, e.client, export.BundleConfig{Out: out, Users: []string{ghost, u.id, u.id}, Concurrency: 2, Media: true})
	if len(res) != 2 {
		t.Fatalf("want one result per distinct user: %+v", res)
	}
	if !synapse.IsNotFound(res[0].Err) {
		t.Errorf("%s: want a 404, got %v", ghost, res[0].Err)
	}
	if _, err := os.Stat(res[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed user left %s: %v", res[0].Path, err)
	}
	r := res[1]
	if r.Err != nil || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], q) || !strings.Contains(r.Notes[0], "quarantined") {
		t.Fatalf("quarantined media: %+v", r)
	}
	m, err := export.VerifyBundle(r.Path)
	if err != nil || len(m.SkippedMedia) != 1 || m.SkippedMedia[0].MediaID != q {
		t.Fatalf("manifest: %+v %v", m, err)
	}
	if _, err := os.Stat(filepath.Join(r.Path, "media", q+".bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("quarantined media was saved: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(r.Path, "media", u.uploads[1].mediaID+".bin"))
	if err != nil || !bytes.Equal(b, u.uploads[1].body) {
		t.Errorf("the other upload: %v", err)
	}
}

func TestExportDataRefusedTokenStopsTheRun(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	u := e.newDataUser(t, uniq(t)+"-plain", false, 0)
	for name, token := range map[string]string{"unknown token": "syt_nope", "not an admin": u.token} {
		t.Run(name, func(t *testing.T) {
			c, err := synapse.New(synapse.Config{Server: e.server, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			res, err := export.Bundles(context.Background(), c, export.BundleConfig{Out: t.TempDir(), Users: []string{u.id, e.id("admin")}})
			if !synapse.IsAuth(err) {
				t.Fatalf("want an auth error, got %v", err)
			}
			for _, r := range res {
				if r.Err == nil {
					t.Errorf("%s: no error after a refused token", r.UserID)
				}
			}
		})
	}
}

func (e *env) dataAdminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
