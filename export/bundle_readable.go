package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// readableName is the bundle's page for people: what the JSON files say,
// in the person's terms, with links to the files. Like the run report it
// runs no script and loads nothing, so it opens offline as it is.
const readableName = "index.html"

// readable is what the page shows.
type readable struct {
	UserID      string
	Displayname string
	Created     string
	Deactivated bool
	Emails      []readableThreepid
	Devices     []readableDevice
	Rooms       []readableRoom
	Media       []readableMedia
	Exported    string
}

type readableThreepid struct{ Medium, Address, Added string }

type readableDevice struct{ ID, Name, LastSeen, Address string }

type readableRoom struct {
	ID, Name, Membership, File string
	Messages                   int
}

type readableMedia struct {
	Name, Type, Uploaded, File string
	Size                       int64
}

// iso writes a time as ISO 8601 with its zone (UTC); "" for none.
func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func isoMS(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return iso(time.UnixMilli(ms))
}

// writeReadable writes index.html from the files already in dir and the
// manifest's entries, and returns its own entry. Names of rooms the user
// is no longer joined to are read from the room admin API.
func (b *bundler) writeReadable(ctx context.Context, id, dir string, m *Manifest, rooms *roomList, media []synapse.Media) (ManifestFile, error) {
	r := readable{UserID: id, Exported: iso(time.Now())}
	if err := r.readUser(dir); err != nil {
		return ManifestFile{}, err
	}
	if err := r.readDevices(dir); err != nil {
		return ManifestFile{}, err
	}
	var err error
	if r.Rooms, err = b.readableRooms(ctx, id, dir, m, rooms); err != nil {
		return ManifestFile{}, err
	}
	r.Media = readableMediaOf(m, media)
	size, sum, err := saveAtomic(dir, readableName, func(w io.Writer) error { return readablePage.Execute(w, r) })
	if err != nil {
		return ManifestFile{}, fmt.Errorf("%s: %w", readableName, err)
	}
	return ManifestFile{Path: readableName, Size: size, SHA256: sum}, nil
}

// readUser fills in the account from dir's user.json.
func (r *readable) readUser(dir string) error {
	var user struct {
		Displayname *string `json:"displayname"`
		CreationTS  int64   `json:"creation_ts"`
		Deactivated bool    `json:"deactivated"`
		Threepids   []struct {
			Medium  string `json:"medium"`
			Address string `json:"address"`
			AddedAt int64  `json:"added_at"`
		} `json:"threepids"`
	}
	if err := readJSONFile(dir, "user.json", &user); err != nil {
		return err
	}
	if user.Displayname != nil {
		r.Displayname = *user.Displayname
	}
	r.Deactivated = user.Deactivated
	if user.CreationTS > 0 {
		// Synapse gives the account's creation in seconds.
		r.Created = iso(time.Unix(user.CreationTS, 0))
	}
	for _, t := range user.Threepids {
		r.Emails = append(r.Emails, readableThreepid{Medium: t.Medium, Address: t.Address, Added: isoMS(t.AddedAt)})
	}
	return nil
}

// readDevices fills in the devices from dir's devices.json.
func (r *readable) readDevices(dir string) error {
	var devices struct {
		Devices []struct {
			DeviceID    string  `json:"device_id"`
			DisplayName *string `json:"display_name"`
			LastSeenIP  *string `json:"last_seen_ip"`
			LastSeenTS  *int64  `json:"last_seen_ts"`
		} `json:"devices"`
	}
	if err := readJSONFile(dir, "devices.json", &devices); err != nil {
		return err
	}
	for _, d := range devices.Devices {
		rd := readableDevice{ID: d.DeviceID}
		if d.DisplayName != nil {
			rd.Name = *d.DisplayName
		}
		if d.LastSeenIP != nil {
			rd.Address = *d.LastSeenIP
		}
		if d.LastSeenTS != nil {
			rd.LastSeen = isoMS(*d.LastSeenTS)
		}
		r.Devices = append(r.Devices, rd)
	}
	return nil
}

// readableRooms lists the rooms of the page, sorted by name: every room
// with an events file (and how many messages the user sent there), then
// the joined rooms without one.
func (b *bundler) readableRooms(ctx context.Context, id, dir string, m *Manifest, rooms *roomList) ([]readableRoom, error) {
	names := map[string]string{}
	for _, raw := range rooms.Rooms {
		var d struct {
			RoomID string  `json:"room_id"`
			Name   *string `json:"name"`
		}
		if json.Unmarshal(raw, &d) == nil && d.Name != nil {
			names[d.RoomID] = *d.Name
		}
	}
	var out []readableRoom
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.RoomID == "" {
			continue
		}
		seen[f.RoomID] = true
		name, ok := names[f.RoomID]
		if !ok {
			// A room they left: its name from the room admin API.
			d, err := retried(ctx, b, func() (*synapse.RoomDetails, error) { return b.c.Room(ctx, f.RoomID) })
			if err == nil && d.Name != nil {
				name = *d.Name
			}
		}
		n, err := countMessages(filepath.Join(dir, filepath.FromSlash(f.Path)), id)
		if err != nil {
			return nil, err
		}
		out = append(out, readableRoom{ID: f.RoomID, Name: name, Membership: f.Membership, File: f.Path, Messages: n})
	}
	for rid, name := range names {
		if !seen[rid] {
			out = append(out, readableRoom{ID: rid, Name: name, Membership: "join"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].ID < out[j].Name+out[j].ID })
	return out, nil
}

// readableMediaOf lists the user's media for the page, each linked to its
// downloaded file when there is one.
func readableMediaOf(m *Manifest, media []synapse.Media) []readableMedia {
	files := map[string]string{}
	for _, f := range m.Files {
		if f.MediaID != "" {
			files[f.MediaID] = f.Path
		}
	}
	var out []readableMedia
	for _, md := range media {
		rm := readableMedia{Type: md.MediaType, Uploaded: isoMS(md.CreatedTS), File: files[md.MediaID], Size: md.MediaLength, Name: md.MediaID}
		if md.UploadName != nil && *md.UploadName != "" {
			rm.Name = *md.UploadName
		}
		out = append(out, rm)
	}
	return out
}

func readJSONFile(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return diskErr(fmt.Errorf("read %s: %w", name, err))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// countMessages counts the messages user sent in a room's events file.
func countMessages(path, user string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, diskErr(fmt.Errorf("read %s: %w", path, err))
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev struct{ Type, Sender string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "m.room.message" && ev.Sender == user {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, diskErr(fmt.Errorf("read %s: %w", path, err))
	}
	return n, nil
}

var readablePage = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Your data on this Matrix server: {{.UserID}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 0.2em 0.8em 0.2em 0; vertical-align: top; }
td.n { text-align: right; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>Your data on this Matrix server</h1>
<p class="muted">Account <code>{{.UserID}}</code>, exported {{.Exported}}. Every time is in UTC (ISO 8601). The files beside this page hold the same data as the server sent it; <code>manifest.json</code> lists each with its SHA-256 checksum.</p>

<h2 id="profile">Profile</h2>
<table>
<tr><th>Display name</th><td>{{.Displayname}}</td></tr>
<tr><th>Account created</th><td>{{.Created}}</td></tr>
<tr><th>Closed</th><td>{{if .Deactivated}}yes{{else}}no{{end}}</td></tr>
</table>

<h2 id="emails">Email addresses and phone numbers</h2>
{{if .Emails}}<table><tr><th>Kind</th><th>Address</th><th>Added</th></tr>
{{range .Emails}}<tr><td>{{.Medium}}</td><td>{{.Address}}</td><td>{{.Added}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}

<h2 id="devices">Devices</h2>
{{if .Devices}}<table><tr><th>Device</th><th>Name</th><th>Last seen</th><th>From address</th></tr>
{{range .Devices}}<tr><td><code>{{.ID}}</code></td><td>{{.Name}}</td><td>{{.LastSeen}}</td><td>{{.Address}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}

<h2 id="rooms">Rooms</h2>
{{if .Rooms}}<table><tr><th>Room</th><th>Your membership</th><th>Your messages</th><th>File</th></tr>
{{range .Rooms}}<tr><td>{{if .Name}}{{.Name}}{{else}}<span class="muted">no name</span>{{end}}<br><code class="muted">{{.ID}}</code></td><td>{{.Membership}}</td><td class="n">{{if .File}}{{.Messages}}{{end}}</td><td>{{if .File}}<a href="{{.File}}">{{.File}}</a>{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}

<h2 id="media">Files you uploaded</h2>
{{if .Media}}<table><tr><th>Name</th><th>Type</th><th>Size (bytes)</th><th>Uploaded</th><th>File</th></tr>
{{range .Media}}<tr><td>{{.Name}}</td><td>{{.Type}}</td><td class="n">{{.Size}}</td><td>{{.Uploaded}}</td><td>{{if .File}}<a href="{{.File}}" type="{{.Type}}">{{.File}}</a>{{else}}<span class="muted">not in this export</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
</body>
</html>
`))
