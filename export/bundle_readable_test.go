package export

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// writeReadableSample writes a bundle's JSON files for one person who left
// a room and uploaded a passport scan, and its index.html; it returns the
// page's path.
func writeReadableSample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"user.json":    `{"name":"@pat:hs","displayname":"Pat","creation_ts":1700000000,"threepids":[{"medium":"email","address":"pat@example.org","added_at":1700000000000}]}`,
		"devices.json": `{"devices":[{"device_id":"PHONE","display_name":"Pat's phone","last_seen_ip":"203.0.113.7","last_seen_ts":1765000000000}]}`,
		"events/r.jsonl": `{"type":"m.room.member","sender":"@pat:hs"}` + "\n" + `{"type":"m.room.message","sender":"@pat:hs"}` + "\n" +
			`{"type":"m.room.message","sender":"@pat:hs"}` + "\n" + `{"type":"m.room.message","sender":"@other:hs"}` + "\n",
	}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manifest{Files: []ManifestFile{{Path: "events/r.jsonl", RoomID: "!r:hs", Membership: "leave"}, {Path: "media/M1", MediaID: "M1"}}}
	rooms := &roomList{Rooms: []json.RawMessage{json.RawMessage(`{"room_id":"!r:hs","name":"Book club <b>"}`)}}
	scan := "passport scan.pdf"
	media := []synapse.Media{{MediaID: "M1", MediaType: "application/pdf", UploadName: &scan, CreatedTS: 1764000000000, MediaLength: 1234}}
	b := &bundler{}
	f, err := b.writeReadable(context.Background(), "@pat:hs", dir, m, rooms, media)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != readableName || f.Size == 0 || len(f.SHA256) != 64 {
		t.Fatalf("manifest entry %+v", f)
	}
	return filepath.Join(dir, readableName)
}

// readableWants is what a person must find on the page: the room by its
// name (escaped), their 2 messages there, the device's last seen time in
// ISO 8601 with its zone and its address, the upload by its name and type.
var readableWants = []string{"Book club <b>", "leave", "Pat's phone", "2025-12-06T05:46:40Z", "203.0.113.7",
	"pat@example.org", "passport scan.pdf", "application/pdf", "2025-11-24T16:00:00Z", "events/r.jsonl"}

// TestReadableIndexSaysItInThePersonsTerms: the page holds each of
// readableWants, the message count, and no script.
func TestReadableIndexSaysItInThePersonsTerms(t *testing.T) {
	b, err := os.ReadFile(writeReadableSample(t))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range append(readableWants[1:], "Book club &lt;b&gt;", `<td class="n">2</td>`) {
		if !strings.Contains(page, strings.ReplaceAll(want, "'", "&#39;")) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "url(", "@import", "http:", "https:"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
}

// TestReadableIndexInBrowser opens the page in headless Chromium: it
// renders what a person must find, and the loaded page holds nothing that
// could run or load. CI sets
// SYNBATCH_REQUIRE_BROWSER=1, so a missing browser fails there.
func TestReadableIndexInBrowser(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("SYNBATCH_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium on PATH and SYNBATCH_REQUIRE_BROWSER is set (apt-get install chromium)")
		}
		t.Skip("no chromium on PATH (set SYNBATCH_REQUIRE_BROWSER=1 to make this a failure)")
	}
	url := "file://" + writeReadableSample(t)
	dump := func(extra ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// As root chromium runs only without its sandbox; the page is ours.
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--user-data-dir=" + t.TempDir()}, extra...)
		cmd := exec.CommandContext(ctx, browser, append(args, "--dump-dom", url)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", browser, err, errb.String())
		}
		return out.String()
	}
	dom := dump()
	for _, want := range readableWants {
		if !strings.Contains(dom, strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(want)) {
			t.Errorf("the page as loaded has no %q", want)
		}
	}
	// Nothing in the loaded page can run or load: no script element, no
	// event handler, no URL but the bundle's own files, and a policy that
	// forbids both to the browser.
	if strings.Contains(dom, "<script") || regexp.MustCompile(`\son[a-z]+=`).MatchString(dom) ||
		strings.Contains(dom, "http:") || strings.Contains(dom, "https:") || !strings.Contains(dom, `content="default-src 'none'`) {
		t.Errorf("the page as loaded could run or load something:\n%s", dom)
	}
}

// TestMediaFilesGetTheirExtension: a saved upload is named for its upload
// name's extension, else its content type's usual one, so it opens in the
// right program; an odd or missing one adds nothing.
func TestMediaFilesGetTheirExtension(t *testing.T) {
	name := func(s string) *string { return &s }
	for _, tc := range []struct {
		upload *string
		typ    string
		want   string
	}{
		{name("Passport Scan.PDF"), "application/pdf", ".pdf"},
		{name("photo"), "image/jpeg", ".jpg"},
		{nil, "image/png", ".png"},
		{name("notes.t x t"), "text/plain; charset=utf-8", ".txt"},
		{name("x.../etc/passwd"), "", ""},
		{nil, "application/x-unknown-thing", ""},
	} {
		if got := mediaExt(synapse.Media{UploadName: tc.upload, MediaType: tc.typ}); got != tc.want {
			t.Errorf("upload name %v, type %q: extension %q, want %q", tc.upload, tc.typ, got, tc.want)
		}
	}
}
