package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// errMismatch is a download whose size or sha256 differs from what the
// server lists; it is retried, since a cut stream is the likely cause.
var errMismatch = errors.New("download does not match the media list")

// export fetches everything for one user into dir (which must not exist,
// or hold only the finished room files of an earlier run) and writes
// manifest.json last.
func (b *bundler) export(ctx context.Context, id, server, dir string, res *BundleResult) (*Manifest, error) {
	if err := nofollow.Mkdir(dir, 0o700); err != nil && !(errors.Is(err, os.ErrExist) && b.cfg.Events != "") {
		return nil, diskErr(fmt.Errorf("create %s: %w", dir, err))
	}
	m := &Manifest{Format: bundleFormat, UserID: id, Tool: b.tool, Media: b.cfg.Media}
	doc := b.docSaver(ctx, dir, m)
	if err := b.accountDocs(ctx, id, doc, res); err != nil {
		return nil, err
	}
	rooms, media, err := b.roomAndMediaDocs(ctx, id, doc, res)
	if err != nil {
		return nil, err
	}
	if b.cfg.Events != "" {
		if err := b.events(ctx, id, dir, m, res); err != nil {
			return nil, err
		}
	}
	if b.cfg.Media {
		if err := b.downloadAll(ctx, server, dir, media, m, res); err != nil {
			return nil, err
		}
	}
	// The page for people last: it reads the files above.
	page, err := b.writeReadable(ctx, id, dir, m, rooms, media)
	if err != nil {
		return nil, err
	}
	m.Files = append(m.Files, page)
	if err := b.seal(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

// docSaver returns what saves one JSON document of a user's bundle: it
// fetches the document (retried), writes it as name in dir, and lists it
// in m.
func (b *bundler) docSaver(ctx context.Context, dir string, m *Manifest) func(name string, fetch func() (any, error)) error {
	return func(name string, fetch func() (any, error)) error {
		var v any
		err := b.retry(ctx, func() error {
			var err error
			v, err = fetch()
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f, err := saveJSON(dir, name, v)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
		return nil
	}
}

// accountDocs saves the documents about the account itself: user.json,
// devices, connections, account data, pushers, rate limit, and with MAS
// what MAS holds.
func (b *bundler) accountDocs(ctx context.Context, id string, doc func(string, func() (any, error)) error, res *BundleResult) error {
	raw := func(get func(context.Context, string) (json.RawMessage, error)) func() (any, error) {
		return func() (any, error) { return get(ctx, id) }
	}
	// user.json first: for an id without an account it is the one clear 404
	// (whois and joined_rooms answer 200 for anyone).
	steps := []struct {
		name  string
		fetch func() (any, error)
	}{
		{"user.json", raw(b.c.UserDetails)},
		{"devices.json", raw(b.c.DeviceList)},
		{"connections.json", raw(b.c.Whois)},
		{"account_data.json", func() (any, error) { return b.c.AccountData(ctx, id) }},
		{"pushers.json", raw(b.c.Pushers)},
		{"ratelimit.json", func() (any, error) { return b.c.GetRatelimit(ctx, id) }},
	}
	for _, s := range steps {
		if err := doc(s.name, s.fetch); err != nil {
			return err
		}
	}
	if b.cfg.MAS != nil {
		return b.masDocs(ctx, id, doc, res)
	}
	return nil
}

// roomAndMediaDocs saves rooms.json and media.json, and returns what they
// list for the events, the downloads and the page.
func (b *bundler) roomAndMediaDocs(ctx context.Context, id string, doc func(string, func() (any, error)) error, res *BundleResult) (*roomList, []synapse.Media, error) {
	rooms, err := b.rooms(ctx, id, res)
	if err != nil {
		return nil, nil, fmt.Errorf("rooms.json: %w", err)
	}
	if err := doc("rooms.json", func() (any, error) { return rooms, nil }); err != nil {
		return nil, nil, err
	}
	media, err := b.mediaList(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("media.json: %w", err)
	}
	list := struct {
		Media []json.RawMessage `json:"media"`
		Total int               `json:"total"`
	}{Media: make([]json.RawMessage, 0, len(media)), Total: len(media)}
	for _, md := range media {
		list.Media = append(list.Media, md.Raw)
	}
	if err := doc("media.json", func() (any, error) { return list, nil }); err != nil {
		return nil, nil, err
	}
	return rooms, media, nil
}

// seal writes manifest.json into dir once every file it lists is durable,
// makes the manifest and the folder durable, and drops the room markers
// the manifest now stands for.
func (b *bundler) seal(dir string, m *Manifest) error {
	// Every file's entry must be on disk before the manifest that vouches
	// for them, and the folder's own entry before the user counts as done.
	if err := fsyncDir(dir); err != nil {
		return err
	}
	m.Created = time.Now().UTC().Truncate(time.Second)
	mf, err := saveJSON(dir, manifestName, m)
	if err != nil {
		return err
	}
	m.size = mf.Size
	if err := fsyncDir(dir); err != nil {
		return err
	}
	if err := fsyncDir(b.out); err != nil {
		return err
	}
	// The manifest now vouches for the room files: their markers are no
	// longer needed (a crash before this leaves them, unlisted and harmless).
	if err := nofollow.RemoveAll(filepath.Join(dir, eventsDoneDir)); err != nil {
		return diskErr(err)
	}
	return nil
}

// roomList is rooms.json: the details of every room the user is joined to,
// in the shape of Synapse's own lists.
type roomList struct {
	Rooms []json.RawMessage `json:"rooms"`
	Total int               `json:"total"`
}

func (b *bundler) rooms(ctx context.Context, id string, res *BundleResult) (*roomList, error) {
	joined, err := retried(ctx, b, func() ([]string, error) { return b.c.JoinedRooms(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("joined rooms: %w", err)
	}
	out := &roomList{Rooms: make([]json.RawMessage, 0, len(joined)), Total: len(joined)}
	for _, rid := range joined {
		var d *synapse.RoomDetails
		err := b.retry(ctx, func() error {
			var err error
			d, err = b.c.Room(ctx, rid)
			return err
		})
		if synapse.IsNotFound(err) {
			// Joined, but unknown to the room admin API (being purged): keep the id.
			stub, _ := json.Marshal(map[string]string{"room_id": rid})
			out.Rooms = append(out.Rooms, stub)
			res.Notes = append(res.Notes, fmt.Sprintf("room %s: no details (404)", rid))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("room %s: %w", rid, err)
		}
		out.Rooms = append(out.Rooms, d.Raw)
	}
	return out, nil
}

// mediaList reads every page of the user's media, oldest first. Synapse
// pages by offset, so an upload or deletion during the export can repeat an
// entry: repeats are dropped by media id.
func (b *bundler) mediaList(ctx context.Context, id string) ([]synapse.Media, error) {
	var all []synapse.Media
	seen := map[string]bool{}
	tokens := map[string]bool{}
	from := ""
	for {
		var p *synapse.MediaPage
		err := b.retry(ctx, func() error {
			var err error
			p, err = b.c.UserMedia(ctx, id, from, b.pageSize)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, md := range p.Media {
			if !seen[md.MediaID] {
				seen[md.MediaID] = true
				all = append(all, md)
			}
		}
		if p.NextToken == "" {
			return all, nil
		}
		if tokens[p.NextToken] || len(p.Media) == 0 {
			return nil, fmt.Errorf("media list does not advance (next_token %q after %d entries)", p.NextToken, len(all))
		}
		tokens[p.NextToken] = true
		from = p.NextToken
	}
}

// downloadAll fetches the user's uploads into dir/media. Quarantined and
// vanished files are noted, not failures: the rest of the bundle is still
// worth having, and the note says what is missing.
func (b *bundler) downloadAll(ctx context.Context, server, dir string, media []synapse.Media, m *Manifest, res *BundleResult) error {
	mdir := filepath.Join(dir, mediaDir)
	if err := nofollow.Mkdir(mdir, 0o700); err != nil {
		return diskErr(fmt.Errorf("create %s: %w", mdir, err))
	}
	names := map[string]bool{}
	previews := 0
	skip := func(md synapse.Media, reason string) {
		m.SkippedMedia = append(m.SkippedMedia, SkippedMedia{MediaID: md.MediaID, Reason: reason})
		res.Notes = append(res.Notes, fmt.Sprintf("media %s: %s, not downloaded", md.MediaID, reason))
	}
	for _, md := range media {
		switch {
		case md.URLCache != nil:
			// A URL preview the user's client asked for: someone else's web content.
			previews++
			continue
		case md.QuarantinedBy != nil:
			skip(md, "quarantined by "+*md.QuarantinedBy)
			continue
		}
		name := mediaFileName(md.MediaID, names) + mediaExt(md)
		f, err := b.download(ctx, server, mdir, name, md)
		if synapse.IsNotFound(err) {
			skip(md, "not found on the server (deleted or quarantined)")
			continue
		}
		if err != nil {
			return fmt.Errorf("media %s: %w", md.MediaID, err)
		}
		m.Files = append(m.Files, f)
	}
	if previews > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d URL preview image(s) listed in media.json, not downloaded", previews))
	}
	return fsyncDir(mdir)
}

// download streams one file to mdir/name and checks it against the list.
func (b *bundler) download(ctx context.Context, server, mdir, name string, md synapse.Media) (ManifestFile, error) {
	var f ManifestFile
	err := b.retry(ctx, func() error {
		size, sum, err := saveAtomic(mdir, name, func(w io.Writer) error {
			_, err := b.c.Download(ctx, server, md.MediaID, w)
			return err
		})
		if err != nil {
			return err
		}
		if size != md.MediaLength || (md.SHA256 != "" && !strings.EqualFold(sum, md.SHA256)) {
			return fmt.Errorf("%w: got %d bytes with sha256 %s, listed %d bytes with sha256 %q",
				errMismatch, size, sum, md.MediaLength, md.SHA256)
		}
		f = ManifestFile{Path: mediaDir + "/" + name, Size: size, SHA256: sum, MediaID: md.MediaID, ContentType: md.MediaType}
		if md.UploadName != nil {
			f.UploadName = *md.UploadName
		}
		return nil
	})
	return f, err
}
