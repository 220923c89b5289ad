package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// Events modes of BundleConfig.Events.
const (
	EventsSent = "sent" // the events the user sent, in every room they have a membership in
	EventsAll  = "all"  // every event of the rooms they are or were a member of
)

const (
	eventsDir = "events"
	// eventsDoneDir holds a marker per finished room file. A room file is
	// renamed into place whole, and its marker written after it is on disk,
	// so a marker always vouches for a complete file: a killed run resumes
	// from the rooms that have one and refetches the rest.
	eventsDoneDir = ".events-done"
)

// roomMarker is one finished room file, as the next run of the same export
// finds it.
type roomMarker struct {
	RoomID string       `json:"room_id"`
	Filter string       `json:"filter"` // what the file holds: EventsSent or EventsAll
	File   ManifestFile `json:"file"`
}

// invite is one pending invite or knock of invites.json.
type invite struct {
	RoomID     string          `json:"room_id"`
	Membership string          `json:"membership"`
	Event      json.RawMessage `json:"event"` // the m.room.member event; null when the room's state is not on this server
}

// events writes memberships.json, invites.json and one JSONL file per room
// the user has a membership in (events/<room>.jsonl: one event a line,
// oldest first), resuming from the rooms an earlier run finished.
func (b *bundler) events(ctx context.Context, id, dir string, m *Manifest, res *BundleResult) error {
	ms, err := b.memberships(ctx, id, dir, m, res)
	if err != nil {
		return err
	}
	edir, ddir := filepath.Join(dir, eventsDir), filepath.Join(dir, eventsDoneDir)
	for _, d := range []string{edir, ddir} {
		if err := nofollow.MkdirAll(d, 0o700); err != nil {
			return diskErr(fmt.Errorf("create %s: %w", d, err))
		}
	}
	rooms := make([]string, 0, len(ms))
	for r := range ms {
		rooms = append(rooms, r)
	}
	slices.Sort(rooms)
	var invites []invite
	for _, room := range rooms {
		membership := ms[room]
		filter := roomFilter(b.cfg.Events, membership)
		f, err := b.roomEvents(ctx, id, room, membership, filter, edir, ddir, res)
		if err != nil {
			return fmt.Errorf("events of room %s: %w", room, err)
		}
		if f != nil {
			f.Membership = membership
			m.Files = append(m.Files, *f)
		}
		if membership == "invite" || membership == "knock" {
			inv, err := b.pending(ctx, id, room, membership, res)
			if err != nil {
				return fmt.Errorf("invites.json: room %s: %w", room, err)
			}
			invites = append(invites, inv)
		}
	}
	if err := dropUnlisted(edir, m); err != nil {
		return err
	}
	list := struct {
		Invites []invite `json:"invites"`
		Total   int      `json:"total"`
	}{Invites: append([]invite{}, invites...), Total: len(invites)}
	f, err := saveJSON(dir, "invites.json", list)
	if err != nil {
		return err
	}
	m.Files = append(m.Files, f)
	m.Events = b.cfg.Events
	return nil
}

// memberships saves memberships.json and returns every room the user has
// a membership in, with it: the server's list, and the rooms the room
// scan found that every local member has left.
func (b *bundler) memberships(ctx context.Context, id, dir string, m *Manifest, res *BundleResult) (map[string]string, error) {
	var (
		ms  map[string]string
		raw json.RawMessage
	)
	err := b.retry(ctx, func() error {
		var err error
		ms, raw, err = b.c.Memberships(ctx, id)
		return err
	})
	if synapse.IsUnrecognized(err) || synapse.IsNotFound(err) {
		// A Synapse older than the memberships endpoint: current joins are
		// all the Admin API tells.
		ms, raw, err = b.joinedOnly(ctx, id)
		res.Notes = append(res.Notes, "the server has no memberships endpoint: events of joined rooms only")
	}
	if err != nil {
		return nil, fmt.Errorf("memberships.json: %w", err)
	}
	f, err := saveJSON(dir, "memberships.json", raw)
	if err != nil {
		return nil, err
	}
	m.Files = append(m.Files, f)

	found := 0
	for room, d := range b.departed[id] {
		if _, ok := ms[room]; !ok {
			ms[room] = d.membership
			found++
		}
	}
	if found > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d room(s) every local member has left, found by the room scan", found))
	}
	return ms, nil
}

// dropUnlisted removes the room files of an earlier run that this one did
// not list (a room the user no longer has a membership in), so the folder
// holds what its manifest says, then makes the folder's entries durable.
func dropUnlisted(edir string, m *Manifest) error {
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	if err := nofollow.CheckDir(edir); err != nil {
		return diskErr(err)
	}
	entries, err := os.ReadDir(edir)
	if err != nil {
		return diskErr(err)
	}
	for _, e := range entries {
		if !listed[eventsDir+"/"+e.Name()] {
			if err := nofollow.RemoveAll(filepath.Join(edir, e.Name())); err != nil {
				return diskErr(err)
			}
		}
	}
	return fsyncDir(edir)
}

// roomFilter is what a room's file holds in an export of mode: every event
// the user could see only in rooms they were in; in a room they are invited
// to or knocked on, the events they sent.
func roomFilter(mode, membership string) string {
	if mode == EventsAll && (membership == "join" || membership == "leave" || membership == "ban") {
		return EventsAll
	}
	return EventsSent
}

// keepRoomFiles marks the room files of a complete bundle done before it is
// redone for more (media now wanted): the manifest vouched for them, so the
// redo need not fetch their rooms again.
func keepRoomFiles(dir string, m *Manifest) error {
	ddir := filepath.Join(dir, eventsDoneDir)
	if err := nofollow.MkdirAll(ddir, 0o700); err != nil {
		return err
	}
	for _, f := range m.Files {
		name, ok := strings.CutPrefix(f.Path, eventsDir+"/")
		if f.RoomID == "" || !ok || name != eventsFileName(f.RoomID) {
			continue
		}
		mk := roomMarker{RoomID: f.RoomID, Filter: roomFilter(m.Events, f.Membership), File: f}
		mk.File.Membership = ""
		if _, err := saveJSON(ddir, name+".json", mk); err != nil {
			return err
		}
	}
	return fsyncDir(ddir)
}

// joinedOnly stands in for the memberships of a server without that endpoint.
func (b *bundler) joinedOnly(ctx context.Context, id string) (map[string]string, json.RawMessage, error) {
	joined, err := retried(ctx, b, func() ([]string, error) { return b.c.JoinedRooms(ctx, id) })
	if err != nil {
		return nil, nil, err
	}
	ms := make(map[string]string, len(joined))
	for _, r := range joined {
		ms[r] = "join"
	}
	raw, err := json.Marshal(map[string]any{"memberships": ms})
	return ms, raw, err
}

// roomEvents returns the manifest entry of the room's file: the one an
// earlier run finished, or a new one paged to the end. It returns nil for a
// room the server no longer has (purged, or only known through an invite
// from another server).
func (b *bundler) roomEvents(ctx context.Context, id, room, membership, filter, edir, ddir string, res *BundleResult) (*ManifestFile, error) {
	name := eventsFileName(room)
	if f, ok := finishedRoom(edir, ddir, name, room, filter); ok {
		return &f, nil
	}
	var (
		senders []string
		seen    *seenBy
	)
	if filter == EventsSent {
		senders = []string{id}
	} else {
		var err error
		if seen, err = b.seenBy(ctx, id, room, membership); err != nil {
			return nil, err
		}
	}
	var count int64
	size, sum, err := saveAtomic(edir, name, func(w io.Writer) error {
		var err error
		count, err = b.pageRoom(ctx, room, senders, seen, w)
		return err
	})
	if synapse.IsNotFound(err) {
		res.Notes = append(res.Notes, fmt.Sprintf("room %s: the server has no events of it (404)", room))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := ManifestFile{Path: eventsDir + "/" + name, Size: size, SHA256: sum, RoomID: room, Events: &count}
	// The file's entry must be on disk before the marker that vouches for it.
	if err := fsyncDir(edir); err != nil {
		return nil, err
	}
	if _, err := saveJSON(ddir, name+".json", roomMarker{RoomID: room, Filter: filter, File: f}); err != nil {
		return nil, err
	}
	if err := fsyncDir(ddir); err != nil {
		return nil, err
	}
	return &f, nil
}

// pageRoom writes the room's events to w a page at a time, one compact JSON
// event a line, so a room of a million events never sits in memory. With
// seen set, only the events it lets through, and none after its last.
func (b *bundler) pageRoom(ctx context.Context, room string, senders []string, seen *seenBy, w io.Writer) (int64, error) {
	var (
		n    int64
		line bytes.Buffer
	)
	tokens := map[string]bool{}
	from := ""
	for {
		p, err := retried(ctx, b, func() (*synapse.MessagesPage, error) {
			return b.c.RoomMessages(ctx, room, synapse.Forward, from, b.eventsPage, synapse.EventFilter{Senders: senders})
		})
		if err != nil {
			return n, err
		}
		for _, ev := range p.Chunk {
			keep, last := true, false
			if seen != nil {
				keep, last = seen.sees(ev)
			}
			if !keep {
				continue
			}
			line.Reset()
			if err := json.Compact(&line, ev); err != nil {
				return n, fmt.Errorf("event %d: %w", n+1, err)
			}
			line.WriteByte('\n')
			if _, err := w.Write(line.Bytes()); err != nil {
				return n, err
			}
			n++
			if last {
				return n, nil
			}
		}
		if p.End == "" {
			return n, nil
		}
		// Forward tokens only move on; one seen before would loop forever.
		if p.End == from || tokens[p.End] {
			return n, fmt.Errorf("messages do not advance (token %q after %d events)", p.End, n)
		}
		tokens[p.End] = true
		from = p.End
	}
}

// pending returns the user's invite or knock event in room, read from the
// room's current state.
func (b *bundler) pending(ctx context.Context, id, room, membership string, res *BundleResult) (invite, error) {
	inv := invite{RoomID: room, Membership: membership, Event: json.RawMessage("null")}
	state, err := retried(ctx, b, func() ([]json.RawMessage, error) { return b.c.RoomStateRaw(ctx, room) })
	if synapse.IsNotFound(err) {
		res.Notes = append(res.Notes, fmt.Sprintf("room %s: %s without the room's state on this server", room, membership))
		return inv, nil
	}
	if err != nil {
		return inv, err
	}
	for _, ev := range state {
		var head struct {
			Type     string  `json:"type"`
			StateKey *string `json:"state_key"`
		}
		if json.Unmarshal(ev, &head) == nil && head.Type == "m.room.member" && head.StateKey != nil && *head.StateKey == id {
			inv.Event = ev
			break
		}
	}
	return inv, nil
}

// finishedRoom reports whether an earlier run finished the room's file with
// the same filter, and returns its manifest entry. A missing or unreadable
// marker, or a file of another size, means the room is fetched again.
func finishedRoom(edir, ddir, name, room, filter string) (ManifestFile, bool) {
	f, err := nofollow.Open(filepath.Join(ddir, name+".json"))
	if err != nil {
		return ManifestFile{}, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifest))
	f.Close()
	if err != nil {
		return ManifestFile{}, false
	}
	var mk roomMarker
	if json.Unmarshal(data, &mk) != nil || mk.RoomID != room || mk.Filter != filter || mk.File.Path != eventsDir+"/"+name {
		return ManifestFile{}, false
	}
	fi, err := os.Lstat(filepath.Join(edir, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != mk.File.Size {
		return ManifestFile{}, false
	}
	return mk.File, true
}

// eventsFileName is the file a room's events go in: the room id made safe
// (as folderName does) and a hash of the exact id, since room ids differ by
// case and a file system may not.
func eventsFileName(room string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimPrefix(room, "!")) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(room))
	return b.String() + "-" + hex.EncodeToString(sum[:])[:12] + ".jsonl"
}

// clearUnfinished removes what a run left in dir without finishing the
// bundle, keeping the room files that have a marker (and their markers) when
// events are exported, so the next run does not fetch them again.
func (b *bundler) clearUnfinished(dir string) error {
	if b.cfg.Events == "" {
		return nofollow.RemoveAll(dir)
	}
	// The folder and its events folder are checked before anything in them
	// is listed or removed: through a link planted at either name, this
	// would delete another folder's files.
	for _, d := range []string{dir, filepath.Join(dir, eventsDir)} {
		if err := nofollow.CheckDir(d); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == eventsDir || e.Name() == eventsDoneDir {
			continue
		}
		if err := nofollow.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	// Half-paged rooms are temporary files: never counted, removed here.
	tmps, _ := filepath.Glob(filepath.Join(dir, eventsDir, ".*.tmp-*"))
	for _, p := range tmps {
		if err := nofollow.Remove(p); err != nil {
			return err
		}
	}
	return nil
}
