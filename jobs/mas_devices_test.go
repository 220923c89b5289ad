package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synbatch/synbatch/journal"
)

// compatLogin logs a into the stand-in with a password and a device id, as
// a legacy client does: MAS makes a compat session for that device.
func compatLogin(t *testing.T, issuer, user, password, device string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user},
		"password": password, "device_id": device})
	resp, err := http.Post(strings.TrimSuffix(issuer, "/")+"/_matrix/client/v3/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login %s: HTTP %d", device, resp.StatusCode)
	}
}

// standin calls a stand-in-only route (/_standin/…) with an admin token.
func standin(t *testing.T, issuer, path string, body any) map[string]any {
	t.Helper()
	base := strings.TrimSuffix(issuer, "/")
	form := strings.NewReader("grant_type=client_credentials&scope=urn:mas:admin")
	req, _ := http.NewRequest("POST", base+"/oauth2/token", form)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("01JCL1ENT000000000000000AD", "client-secret")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(req, &tok); err != nil {
		t.Fatalf("admin token: %v", err)
	}
	b, _ := json.Marshal(body)
	req, _ = http.NewRequest("POST", base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	var out map[string]any
	if err := doJSON(req, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func doJSON(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// TestMASDeleteDevicesInactiveDaysFinishesOnlyOldSessions: on a MAS server
// a delete-devices row with --inactive-days 30 finishes in MAS the sessions
// that neither MAS (last_active_at) nor Synapse (the device's last_seen_ts)
// saw used within 30 days, and keeps the others: a device Synapse last saw
// long ago but MAS saw yesterday is kept. An OAuth 2.0 session counts by the
// device its scope names. With devices naming one id, only that one if it
// is old. Browser sessions (no device) end with all only, by MAS's age.
func TestMASDeleteDevicesInactiveDaysFinishesOnlyOldSessions(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * day) }
	// Synapse's last-seen and MAS's last-active ages of each device, in days.
	type age struct {
		dev          string
		synapse, mas int
	}
	ages := []age{{"OLD1", 90, 90}, {"OLD2", 31, 40}, {"NEW", 2, 2}, {"MASNEW", 60, 1}, {"OAUTH", 45, 50}}
	var list []string
	for _, a := range ages {
		list = append(list, fmt.Sprintf(`{"device_id":%q,"last_seen_ts":%d}`, a.dev, ago(a.synapse).UnixMilli()))
	}
	devices := `{"devices":[` + strings.Join(list, ",") + `]}`
	devs := []string{"OLD1", "OLD2", "NEW", "MASNEW", "OAUTH"}
	for _, c := range []struct {
		name, devs string
		finished   []string
	}{
		{"all", "all", []string{"OLD1", "OLD2", "OAUTH", "old browser"}},
		{"one old", "OLD2", []string{"OLD2"}},
		{"one recent", "NEW", nil},
		{"one recent in MAS only", "MASNEW", nil},
		{"one old OAuth 2.0 session", "OAUTH", []string{"OAUTH"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			all := slices.Clone(devs)
			j, env, m, _ := masEnv(t, "action", "delete-devices", "user_id", "a", "devices", c.devs)
			_, _, syn := scripted(t, map[string]string{"GET /_synapse/admin/v2/users/@a:hs/devices": devices}, "user_id", "a")
			env.Client, env.InactiveDays = syn.Client, 30
			ctx := context.Background()
			u, err := m.CreateUser(ctx, "a", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.SetPassword(ctx, u.ID, "Long-enough-pw-1"); err != nil {
				t.Fatal(err)
			}
			for _, a := range ages {
				if a.dev == "OAUTH" {
					standin(t, m.Issuer(), "/_standin/oauth2-sessions", map[string]any{"username": "a", "device_id": a.dev})
				} else {
					compatLogin(t, m.Issuer(), "a", "Long-enough-pw-1", a.dev)
				}
			}
			browsers := map[string]string{} // session id → "old browser" or "recent browser"
			for _, b := range []string{"old browser", "recent browser"} {
				out := standin(t, m.Issuer(), "/_standin/user-sessions", map[string]any{"username": "a"})
				data, _ := out["data"].(map[string]any)
				id, _ := data["id"].(string)
				if id == "" {
					t.Fatalf("browser session: %v", out)
				}
				browsers[id] = b
				all = append(all, b)
			}
			ss, err := m.ActiveSessions(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if b, ok := browsers[s.ID]; ok {
					standin(t, m.Issuer(), "/_standin/user-sessions/"+s.ID+"/last-active", map[string]any{"last_active_at": ago(map[string]int{"old browser": 60, "recent browser": 1}[b])})
					continue
				}
				i := slices.IndexFunc(ages, func(a age) bool { return a.dev == s.DeviceID })
				if i < 0 {
					t.Fatalf("session %s %s has device %q", s.Kind, s.ID, s.DeviceID)
				}
				standin(t, m.Issuer(), "/_standin/"+s.Kind+"/"+s.ID+"/last-active", map[string]any{"last_active_at": ago(ages[i].mas)})
			}
			res, err := j.Run(ctx, env, &State{})
			if err != nil {
				t.Fatal(err)
			}
			want := journal.Done
			if len(c.finished) == 0 {
				want = journal.Unchanged
			}
			if res.Outcome != want {
				t.Errorf("outcome %s, want %s", res.Outcome, want)
			}
			active, err := m.ActiveSessions(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, s := range active {
				left = append(left, cmpOr(browsers[s.ID], s.DeviceID))
			}
			for _, d := range all {
				if slices.Contains(left, d) == slices.Contains(c.finished, d) {
					t.Errorf("device %s: active %v, finished should be %v (active: %v)", d, slices.Contains(left, d), slices.Contains(c.finished, d), left)
				}
			}
		})
	}
}
