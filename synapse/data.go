package synapse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// This file reads what an account holds, for exports. Documents whose content
// is the server's to define come back as json.RawMessage, exactly as sent, so
// an export keeps fields this client does not know about; only what synbatch
// acts on (media to download, paging, room names) is typed.

// UserDetails returns GET /_synapse/admin/v2/users/<id> as the server sent it,
// threepids and external ids included. GetUser keeps only the fields synbatch
// acts on; an export wants everything.
func (c *Client) UserDetails(ctx context.Context, id string) (json.RawMessage, error) {
	return c.getRaw(ctx, c.userPath("v2", id, ""))
}

// DeviceList returns GET /_synapse/admin/v2/users/<id>/devices as sent
// ({"devices": [...], "total": n}).
func (c *Client) DeviceList(ctx context.Context, id string) (json.RawMessage, error) {
	return c.getRaw(ctx, c.userPath("v2", id, "/devices"))
}

// Whois returns the user's sessions and connections (IP, user agent, last
// seen) from GET /_synapse/admin/v1/whois/<id>, as sent. Synapse answers 200
// with no connections for a local id that has no account.
func (c *Client) Whois(ctx context.Context, id string) (json.RawMessage, error) {
	return c.getRaw(ctx, c.admin("/v1/whois/%s", url.PathEscape(id)))
}

// Pushers returns GET /_synapse/admin/v1/users/<id>/pushers as sent
// ({"pushers": [...], "total": n}).
func (c *Client) Pushers(ctx context.Context, id string) (json.RawMessage, error) {
	return c.getRaw(ctx, c.userPath("v1", id, "/pushers"))
}

// AccountData is a user's account data: event type to content, globally and
// per room. The content is whatever clients stored.
type AccountData struct {
	Global map[string]json.RawMessage            `json:"global"`
	Rooms  map[string]map[string]json.RawMessage `json:"rooms"`
}

// AccountData returns the user's global and per-room account data.
func (c *Client) AccountData(ctx context.Context, id string) (*AccountData, error) {
	var out struct {
		AccountData AccountData `json:"account_data"`
	}
	if err := c.get(ctx, c.userPath("v1", id, "/accountdata"), &out); err != nil {
		return nil, err
	}
	ad := out.AccountData
	if ad.Global == nil {
		ad.Global = map[string]json.RawMessage{}
	}
	if ad.Rooms == nil {
		ad.Rooms = map[string]map[string]json.RawMessage{}
	}
	return &ad, nil
}

// RoomDetails is a room as GET /_synapse/admin/v1/rooms/<room_id> describes
// it. Raw is the whole answer, fields this type does not name included.
type RoomDetails struct {
	RoomID         string          `json:"room_id"`
	Name           *string         `json:"name"`
	CanonicalAlias *string         `json:"canonical_alias"`
	Topic          *string         `json:"topic"`
	Raw            json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw answer beside the typed fields.
func (r *RoomDetails) UnmarshalJSON(b []byte) error {
	type plain RoomDetails
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// Room returns a room's details, or an error for which IsNotFound is true.
func (c *Client) Room(ctx context.Context, roomID string) (*RoomDetails, error) {
	var r RoomDetails
	if err := c.get(ctx, c.admin("/v1/rooms/%s", url.PathEscape(roomID)), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Media is one file a user uploaded (or a URL preview image they caused), as
// the user media list describes it. Raw is the whole entry as sent.
type Media struct {
	MediaID       string  `json:"media_id"`
	MediaType     string  `json:"media_type"`
	MediaLength   int64   `json:"media_length"`
	UploadName    *string `json:"upload_name"`
	CreatedTS     int64   `json:"created_ts"`
	QuarantinedBy *string `json:"quarantined_by"`
	// URLCache is set for URL preview images: not the user's own upload.
	URLCache *string `json:"url_cache"`
	// SHA256 is the content's hex digest; Synapse 1.160 sends it, older ones do not.
	SHA256 string          `json:"sha256"`
	Raw    json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw entry beside the typed fields.
func (m *Media) UnmarshalJSON(b []byte) error {
	type plain Media
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	m.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// MediaPage is one page of a user's media. NextToken is "" on the last page.
type MediaPage struct {
	Media     []Media
	NextToken string
	Total     int64
}

// UserMedia returns one page of the local media a user uploaded, oldest first
// (order_by=created_ts&dir=f): Synapse's default is newest first, and an
// export paging by offset needs an order that new uploads only extend.
// from is "" or a NextToken; limit <= 0 leaves Synapse's default (100).
func (c *Client) UserMedia(ctx context.Context, id, from string, limit int) (*MediaPage, error) {
	q := url.Values{"order_by": {"created_ts"}, "dir": {"f"}}
	if from != "" {
		q.Set("from", from)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Media []Media `json:"media"`
		// The docs call next_token opaque; Synapse sends an integer.
		NextToken json.RawMessage `json:"next_token"`
		Total     int64           `json:"total"`
	}
	if err := c.get(ctx, c.userPath("v1", id, "/media?"+q.Encode()), &out); err != nil {
		return nil, err
	}
	p := &MediaPage{Media: out.Media, Total: out.Total}
	if tok := strings.TrimSpace(string(out.NextToken)); tok != "" && tok != "null" {
		if s, err := strconv.Unquote(tok); err == nil {
			tok = s
		}
		p.NextToken = tok
	}
	return p, nil
}

// Download streams a media file's content to w through the authenticated
// media API (GET /_matrix/client/v1/media/download/<server>/<media_id>, with
// the admin's token) and returns how many bytes it wrote. The body is never
// held in memory. A quarantined or deleted file is a 404 (IsNotFound). On an
// error w may hold part of the content: write to a temporary file.
//
// The client's per-request timeout would cut off a large file that is still
// arriving, so here it bounds silence instead: the download fails only when
// no byte has come for that long.
func (c *Client) Download(ctx context.Context, serverName, mediaID string, w io.Writer) (int64, error) {
	path := "/_matrix/client/v1/media/download/" + url.PathEscape(serverName) + "/" + url.PathEscape(mediaID)
	const method = http.MethodGet
	if err := c.wait(ctx); err != nil {
		return 0, err
	}
	idle := c.http.Timeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	watchdog := time.AfterFunc(idle, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(dctx, method, c.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	c.requests.Add(1)
	hc := &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect, Jar: c.http.Jar}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if stalled.Load() {
			err = fmt.Errorf("no answer for %s", idle)
		}
		return 0, &NetError{Method: method, Path: path, Sent: wasSent(err), Err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, c.answerError(method, path, resp, data, true)
	}
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			watchdog.Reset(idle)
			wk, werr := w.Write(buf[:k])
			n += int64(wk)
			if werr != nil {
				// The writer's own error, unwrapped: the caller's disk, not the network.
				return n, werr
			}
			if wk != k {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if stalled.Load() {
				rerr = fmt.Errorf("no data for %s after %d bytes", idle, n)
			}
			return n, &NetError{Method: method, Path: path, Sent: true, Err: rerr}
		}
	}
}

// get sends a GET and decodes the answer into out.
func (c *Client) get(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, out)
	return err
}

// getRaw returns a GET's JSON answer as sent.
func (c *Client) getRaw(ctx context.Context, path string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("GET %s: empty answer", path)
	}
	return raw, nil
}
