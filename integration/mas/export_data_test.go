package mas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// export data of two users on a MAS server: each bundle holds, in files of
// its own listed with their checksums in manifest.json (which verify), the
// MAS user, its emails, its upstream links (provider and subject) and its
// sessions (kind, created, last active, address, user agent, finished).
// Then a deactivate row with erase and clear=external_ids: MAS shows each
// user deactivated with no links.
func TestMASExportDataBundlesMASRecordsThenEraseClearsLinks(t *testing.T) {
	t.Parallel()
	r := theRigFor(t)
	dir := t.TempDir()
	provName, provID := firstProvider(t, r)
	pre := uniq(t)
	type who struct{ local, id, email, subject string }
	var users []who
	for _, n := range []string{"a", "b"} {
		u := who{local: pre + "." + n, email: pre + "." + n + "@corp.example", subject: "kc-" + pre + "-" + n}
		mu := r.masCreateUser(t, u.local, nil)
		u.id = mu.ID
		if code, body := r.mas(t, "POST", "/user-emails", map[string]any{"user_id": u.id, "email": u.email}); code != 201 {
			t.Fatalf("email: HTTP %d %v", code, body)
		}
		if code, body := r.mas(t, "POST", "/upstream-oauth-links", map[string]any{"user_id": u.id, "provider_id": provID, "subject": u.subject}); code != 201 {
			t.Fatalf("link: HTTP %d %v", code, body)
		}
		if code, body := r.mas(t, "POST", "/users/"+u.id+"/set-password", map[string]any{"password": "Pw-" + pre + "-long"}); code != 204 && code != 200 {
			t.Fatalf("password: HTTP %d %v", code, body)
		}
		// Two logins: two compat sessions, the first then finished.
		for range 2 {
			if !r.masPasswordWorks(t, u.local, "Pw-"+pre+"-long") {
				t.Fatal("login refused")
			}
		}
		ss := r.masList(t, "/compat-sessions?filter[user]="+u.id)
		if len(ss) != 2 {
			t.Fatalf("%d compat sessions, want 2", len(ss))
		}
		if code, body := r.mas(t, "POST", "/compat-sessions/"+ss[0].ID+"/finish", nil); code != 200 {
			t.Fatalf("finish: HTTP %d %v", code, body)
		}
		users = append(users, u)
	}

	out := filepath.Join(dir, "out")
	res := r.synbatch(t, dir, r.env(dir, false), "export", "data", "--out", out, r.id(users[0].local), r.id(users[1].local))
	if res.code != 0 {
		t.Fatalf("export data: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, u := range users {
		bundle := bundleDir(t, out, u.local)
		var m struct {
			Files []struct {
				Path, SHA256 string
				Size         int64
			}
		}
		readJSON(t, filepath.Join(bundle, "manifest.json"), &m)
		listed := map[string]bool{}
		for _, f := range m.Files {
			b, err := os.ReadFile(filepath.Join(bundle, filepath.FromSlash(f.Path)))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
				t.Errorf("%s/%s: checksum or size does not verify", u.local, f.Path)
			}
			listed[f.Path] = true
		}
		for _, f := range []string{"mas_user.json", "mas_emails.json", "mas_upstream_links.json", "mas_sessions.json"} {
			if !listed[f] {
				t.Errorf("%s: manifest.json does not list %s", u.local, f)
			}
		}
		var mu2 struct {
			ID         string
			Attributes map[string]any
		}
		readJSON(t, filepath.Join(bundle, "mas_user.json"), &mu2)
		if mu2.ID != u.id || mu2.Attributes["username"] != u.local {
			t.Errorf("%s: mas_user.json %+v", u.local, mu2)
		}
		var emails []struct{ Attributes map[string]any }
		readJSON(t, filepath.Join(bundle, "mas_emails.json"), &emails)
		if len(emails) != 1 || emails[0].Attributes["email"] != u.email {
			t.Errorf("%s: mas_emails.json %+v, want %s", u.local, emails, u.email)
		}
		var links struct {
			Links     []struct{ Attributes map[string]any }
			Providers []map[string]any
		}
		readJSON(t, filepath.Join(bundle, "mas_upstream_links.json"), &links)
		if len(links.Links) != 1 || links.Links[0].Attributes["provider_id"] != provID || links.Links[0].Attributes["subject"] != u.subject {
			t.Errorf("%s: links %+v, want %s/%s", u.local, links.Links, provID, u.subject)
		}
		named := false
		for _, p := range links.Providers {
			named = named || (p["id"] == provID && p["human_name"] == provName)
		}
		if !named {
			t.Errorf("%s: the providers do not name %s as %s: %+v", u.local, provID, provName, links.Providers)
		}
		var sessions map[string][]struct {
			ID         string
			Attributes map[string]any
		}
		readJSON(t, filepath.Join(bundle, "mas_sessions.json"), &sessions)
		compat, finished := sessions["compat-sessions"], 0
		if len(compat) != 2 {
			t.Fatalf("%s: %d compat sessions in the bundle, want 2 (the finished one too)", u.local, len(compat))
		}
		for _, s := range compat {
			a := s.Attributes
			for _, k := range []string{"created_at", "last_active_at", "last_active_ip", "user_agent"} {
				if v, _ := a[k].(string); v == "" {
					t.Errorf("%s: session %s has no %s: %v", u.local, s.ID, k, a)
				}
			}
			if a["finished_at"] != nil {
				finished++
			}
		}
		if finished != 1 {
			t.Errorf("%s: %d finished sessions in the bundle, want 1", u.local, finished)
		}
		for _, k := range []string{"oauth2-sessions", "user-sessions"} {
			if _, ok := sessions[k]; !ok {
				t.Errorf("%s: mas_sessions.json has no %s", u.local, k)
			}
		}
	}

	sheet := filepath.Join(dir, "erase.csv")
	os.WriteFile(sheet, []byte("action,user_id,erase,clear\ndeactivate,"+users[0].local+",true,external_ids\ndeactivate,"+users[1].local+",true,external_ids\n"), 0o600)
	if res := r.synbatch(t, dir, r.env(dir, false), "apply", "--yes", sheet); res.code != 0 {
		t.Fatalf("deactivate: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, u := range users {
		code, body := r.mas(t, "GET", "/users/"+u.id, nil)
		if code != 200 || resourceOf(body).Attributes["deactivated_at"] == nil {
			t.Errorf("%s: MAS does not show it deactivated: HTTP %d %v", u.local, code, body)
		}
		if l := r.masLinks(t, u.id); len(l) != 0 {
			t.Errorf("%s: links %v after clear=external_ids", u.local, l)
		}
		if su := r.synapseUser(t, r.id(u.local)); su == nil || su["erased"] != true {
			t.Errorf("%s: Synapse does not show it erased: %v", u.local, su)
		}
	}
}

// bundleDir is the folder export data made for a user (index.csv maps ids
// to folders; a folder's name starts with the localpart).
func bundleDir(t *testing.T, out, local string) string {
	t.Helper()
	es, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.IsDir() && strings.Contains(e.Name(), local) {
			return filepath.Join(out, e.Name())
		}
	}
	t.Fatalf("no bundle folder for %s in %s", local, out)
	return ""
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
