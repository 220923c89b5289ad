package mas

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMASRedactAndDeactivateWithRedactRedactEachEventOnce: on a MAS-mode
// server, with nothing but the MAS admin client configured (MAS issues the
// run's Synapse token), a redact row and a deactivate row with redact=true
// and erase=true. Three MAS users, logged in through MAS's compatibility
// login, joined a room and wrote in it. Read back through Synapse's admin
// room messages API: each message and join of the two rows' users is named
// by exactly one m.room.redaction, the third user's by none; MAS shows the
// deactivated user deactivated and Synapse shows it erased; the same
// manifests again write no further redaction.
func TestMASRedactAndDeactivateWithRedactRedactEachEventOnce(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	pre := uniq(t)
	red, gone, other := pre+"r", pre+"d", pre+"o"
	code, room := r.synapse(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "mas redact " + pre, "preset": "public_chat"})
	if code != 200 {
		t.Fatalf("createRoom: HTTP %d %v", code, room)
	}
	roomID := room["room_id"].(string)
	for _, name := range []string{red, gone, other} {
		tok := r.masUserToken(t, name)
		if code, body := r.call(t, "POST", r.server+"/_matrix/client/v3/join/"+url.PathEscape(roomID), tok, map[string]any{}); code != 200 {
			t.Fatalf("%s joins: HTTP %d %v", name, code, body)
		}
		for i := range 3 {
			path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%s-%d", url.PathEscape(roomID), name, i)
			if code, body := r.call(t, "PUT", r.server+path, tok, map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("%s says %d", name, i)}); code != 200 {
				t.Fatalf("%s sends: HTTP %d %v", name, code, body)
			}
		}
	}
	env := r.env(dir, false) // no Synapse token: MAS issues the run's
	write := func(file, body string) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	redactSheet := write("redact.csv", "user_id,action\n"+red+",redact\n")
	deactSheet := write("deactivate.csv", "user_id,action,redact,erase\n"+gone+",deactivate,true,true\n")
	check := func(when string) {
		t.Helper()
		got := r.redactionsOf(t, roomID)
		for _, name := range []string{red, gone, other} {
			want := 1
			if name == other {
				want = 0
			}
			evs := got[r.id(name)]
			if len(evs) != 4 { // a join and three messages
				t.Fatalf("%s: %s has %d events in the room, want 4: %v", when, name, len(evs), evs)
			}
			for ev, n := range evs {
				if n != want {
					t.Errorf("%s: %s's event %s is named by %d redactions, want %d", when, name, ev, n, want)
				}
			}
		}
	}
	for i, pass := range []string{"first run", "second run"} {
		if i > 0 {
			for _, m := range []string{redactSheet, deactSheet} {
				if plan := r.synbatch(t, dir, env, "plan", m); plan.code != 0 || !strings.Contains(plan.stdout, "1 unchanged") {
					t.Errorf("plan of %s again: exit %d, want it unchanged\n%s\n%s", filepath.Base(m), plan.code, plan.stdout, plan.stderr)
				}
			}
		}
		for _, m := range []string{redactSheet, deactSheet} {
			res := r.synbatch(t, dir, env, "apply", "--yes", "--journal", filepath.Join(dir, fmt.Sprintf("%d-%s.journal", i, filepath.Base(m))), m)
			if res.code != 0 {
				t.Fatalf("%s: apply %s: exit %d\n%s\n%s", pass, filepath.Base(m), res.code, res.stdout, res.stderr)
			}
		}
		check(pass)
		if u := r.masUser(t, gone); u == nil || u.Attributes["deactivated_at"] == nil {
			t.Errorf("%s: MAS does not show %s deactivated: %v", pass, gone, u)
		}
		if su := r.synapseUser(t, r.id(gone)); su["deactivated"] != true || su["erased"] != true {
			t.Errorf("%s: Synapse: %s deactivated %v erased %v", pass, gone, su["deactivated"], su["erased"])
		}
	}
}

// masUserToken gives a MAS user a password in MAS and logs in through MAS's
// compatibility login: a token Synapse takes as that user.
func (r *rig) masUserToken(t *testing.T, name string) string {
	t.Helper()
	u := r.masCreateUser(t, name, nil)
	pw := "pw of " + name + " long enough"
	if code, body := r.mas(t, "POST", "/users/"+u.ID+"/set-password", map[string]any{"password": pw}); code != 204 {
		t.Fatalf("MAS set-password of %s: HTTP %d %v", name, code, body)
	}
	code, login := r.masLogin(t, name, pw)
	if code != 200 {
		t.Fatalf("MAS login of %s: HTTP %d %v", name, code, login)
	}
	return login["access_token"].(string)
}

// redactionsOf reads a room's whole timeline through Synapse's admin room
// messages API and returns, per sender, each of their messages and joins
// with the number of m.room.redaction events that name it: the server's
// own count, whatever synbatch reports.
func (r *rig) redactionsOf(t *testing.T, roomID string) map[string]map[string]int {
	t.Helper()
	bySender := map[string]map[string]int{}
	redacts := map[string]int{}
	from := ""
	for {
		q := url.Values{"dir": {"f"}, "limit": {"1000"}}
		if from != "" {
			q.Set("from", from)
		}
		code, b, err := r.do("GET", r.server+"/_synapse/admin/v1/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), r.token, nil)
		if err != nil || code != 200 {
			t.Fatalf("messages of %s: HTTP %d %v %s", roomID, code, err, b)
		}
		var page struct {
			Chunk []struct {
				Type    string `json:"type"`
				EventID string `json:"event_id"`
				Sender  string `json:"sender"`
				Redacts string `json:"redacts"`
				Content struct {
					Membership string `json:"membership"`
					Redacts    string `json:"redacts"`
				} `json:"content"`
			} `json:"chunk"`
			End string `json:"end"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Chunk {
			switch {
			case ev.Type == "m.room.redaction":
				redacts[cmp.Or(ev.Redacts, ev.Content.Redacts)]++
			case ev.Type == "m.room.message" || ev.Type == "m.room.member" && ev.Content.Membership == "join":
				if bySender[ev.Sender] == nil {
					bySender[ev.Sender] = map[string]int{}
				}
				bySender[ev.Sender][ev.EventID] = 0
			}
		}
		if page.End == "" || page.End == from || len(page.Chunk) == 0 {
			break
		}
		from = page.End
	}
	for _, evs := range bySender {
		for id := range evs {
			evs[id] = redacts[id]
		}
	}
	return bySender
}

// TestMASDeactivateWithMediaDeleteDeletesTheUploads: a deactivate row with
// media=delete and erase=true on a MAS-mode server (MAS client only) deletes
// every file the user uploaded, read back through Synapse's admin media
// list, and MAS shows the user deactivated; another user's upload stays.
func TestMASDeactivateWithMediaDeleteDeletesTheUploads(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	pre := uniq(t)
	gone, other := pre+"d", pre+"o"
	for _, name := range []string{gone, other} {
		tok := r.masUserToken(t, name)
		for i := range 2 {
			req, err := http.NewRequest("POST", r.server+"/_matrix/media/v3/upload?filename=f.txt", strings.NewReader(fmt.Sprintf("file %d of %s", i, name)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "text/plain")
			resp, err := r.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s uploads: HTTP %d", name, resp.StatusCode)
			}
		}
	}
	media := func(name string) float64 {
		t.Helper()
		code, m := r.synapse(t, "GET", "/_synapse/admin/v1/users/"+url.PathEscape(r.id(name))+"/media", nil)
		if code != 200 {
			t.Fatalf("media of %s: HTTP %d %v", name, code, m)
		}
		return m["total"].(float64)
	}
	if media(gone) != 2 || media(other) != 2 {
		t.Fatalf("before: %s has %v files, %s %v; want 2 each", gone, media(gone), other, media(other))
	}
	sheet := filepath.Join(dir, "deactivate.csv")
	if err := os.WriteFile(sheet, []byte("user_id,action,media,erase\n"+gone+",deactivate,delete,true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := r.synbatch(t, dir, r.env(dir, false), "apply", "--yes", sheet); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if n := media(gone); n != 0 {
		t.Errorf("%s still has %v files on Synapse after media=delete", gone, n)
	}
	if n := media(other); n != 2 {
		t.Errorf("%s has %v files, want their 2 untouched", other, n)
	}
	if u := r.masUser(t, gone); u == nil || u.Attributes["deactivated_at"] == nil {
		t.Errorf("MAS does not show %s deactivated: %v", gone, u)
	}
}
