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

// TestMASDeleteDevicesInactiveDaysFinishesOnlyOldSessions: on a MAS server
// a delete-devices row with --inactive-days 30 finishes in MAS the compat
// sessions behind the devices Synapse last saw more than 30 days ago
// (and devices Synapse never saw used), and keeps the recent one; with
// devices naming one id, only that one if it is old.
func TestMASDeleteDevicesInactiveDaysFinishesOnlyOldSessions(t *testing.T) {
	now := time.Now().UnixMilli()
	day := int64(24 * time.Hour / time.Millisecond)
	devices := fmt.Sprintf(`{"devices":[{"device_id":"OLD1","last_seen_ts":%d},{"device_id":"OLD2","last_seen_ts":%d},{"device_id":"NEW","last_seen_ts":%d}]}`,
		now-90*day, now-31*day, now-2*day)
	for _, c := range []struct {
		name, devs string
		finished   []string
	}{
		{"all", "all", []string{"OLD1", "OLD2"}},
		{"one old", "OLD2", []string{"OLD2"}},
		{"one recent", "NEW", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
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
			for _, d := range []string{"OLD1", "OLD2", "NEW"} {
				compatLogin(t, m.Issuer(), "a", "Long-enough-pw-1", d)
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
				left = append(left, s.DeviceID)
			}
			for _, d := range []string{"OLD1", "OLD2", "NEW"} {
				if slices.Contains(left, d) == slices.Contains(c.finished, d) {
					t.Errorf("device %s: active %v, finished should be %v (active: %v)", d, slices.Contains(left, d), slices.Contains(c.finished, d), left)
				}
			}
		})
	}
}
