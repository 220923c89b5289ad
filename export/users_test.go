package export

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/synbatch/synbatch/synapse"
)

// usersServer serves a user list of two users, one never seen, as Synapse
// 1.160 does: creation_ts and last_seen_ts in ms in the list, creation_ts
// in seconds for one user.
func usersServer(t *testing.T) *synapse.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/_synapse/admin/v2/users":
			json.NewEncoder(w).Encode(map[string]any{"total": 2, "users": []map[string]any{
				{"name": "@alice:hs.test", "creation_ts": 1769853600000, "last_seen_ts": 1780308000123},
				{"name": "@bob:hs.test", "creation_ts": 1769853601000, "last_seen_ts": nil},
			}})
		case strings.HasPrefix(r.URL.Path, "/_synapse/admin/v2/users/"):
			name := strings.TrimPrefix(r.URL.Path, "/_synapse/admin/v2/users/")
			ts := map[string]int64{"@alice:hs.test": 1769853600, "@bob:hs.test": 1769853601}[name]
			json.NewEncoder(w).Encode(map[string]any{"name": name, "creation_ts": ts, "admin": false})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := synapse.New(synapse.Config{Server: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExportUsersDates: creation_ts is also written as an ISO 8601 created
// column, and last_seen from the list's last_seen_ts; JSONL keeps numbers.
func TestExportUsersDates(t *testing.T) {
	c := usersServer(t)
	dir := t.TempDir()
	for _, ext := range []string{"csv", "jsonl", "xlsx"} {
		out := filepath.Join(dir, "users."+ext)
		if _, err := Users(context.Background(), c, UsersConfig{Out: out, Concurrency: 1}); err != nil {
			t.Fatal(err)
		}
		switch ext {
		case "csv":
			b, _ := os.ReadFile(out)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if !strings.HasSuffix(lines[0], ",creation_ts,created,last_seen") ||
				!strings.HasSuffix(lines[1], ",1769853600,2026-01-31T10:00:00Z,2026-06-01T10:00:00Z") ||
				!strings.HasSuffix(lines[2], ",1769853601,2026-01-31T10:00:01Z,") {
				t.Errorf("csv:\n%s", b)
			}
		case "jsonl":
			b, _ := os.ReadFile(out)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if !strings.HasSuffix(lines[0], `"creation_ts":1769853600,"last_seen_ts":1780308000123}`) ||
				!strings.HasSuffix(lines[1], `"creation_ts":1769853601}`) {
				t.Errorf("jsonl:\n%s", b)
			}
		case "xlsx":
			f, err := excelize.OpenFile(out)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := f.GetRows("Sheet1")
			head := rows[0]
			col := func(name string) string {
				for i, h := range head {
					if h == name {
						n, _ := excelize.CoordinatesToCellName(i+1, 2)
						return n
					}
				}
				t.Fatalf("no column %s in %v", name, head)
				return ""
			}
			for _, name := range []string{"created", "last_seen"} {
				ref := col(name)
				typ, _ := f.GetCellType("Sheet1", ref)
				style, _ := f.GetCellStyle("Sheet1", ref)
				st, _ := f.GetStyle(style)
				if typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString || st == nil || (st.NumFmt == 0 && st.CustomNumFmt == nil) {
					t.Errorf("xlsx %s (%s): type %v style %+v, want a date cell", name, ref, typ, st)
				}
			}
			f.Close()
		}
	}
}
