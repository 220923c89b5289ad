package fakesynapse

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestExportReadsAnswerAsSynapse: each read of a data bundle answers an
// account it holds in Synapse 1.160's shape, lists the rooms the user is
// joined to (not those it is only invited to), and answers 404
// M_NOT_FOUND for an account it does not hold.
func TestExportReadsAnswerAsSynapse(t *testing.T) {
	s := New("hs")
	defer s.Close()
	s.Put(User{Name: "@a:hs"})
	s.PutRoom(Room{ID: "!in:hs", Members: []string{"@a:hs"}})
	s.PutRoom(Room{ID: "!invited:hs", Invited: []string{"@a:hs"}})
	const a = "/_synapse/admin/v1"
	if code, out := call(t, s, http.MethodGet, a+"/users/@a:hs/joined_rooms", nil); code != 200 || !slices.Equal(texts(out["joined_rooms"]), []string{"!in:hs"}) || out["total"] != 1.0 {
		t.Fatalf("joined rooms: %d %v", code, out)
	}
	for path, key := range map[string]string{
		a + "/whois/@a:hs":                    "user_id",
		a + "/users/@a:hs/accountdata":        "account_data",
		a + "/users/@a:hs/pushers":            "pushers",
		a + "/users/@a:hs/media":              "media",
		a + "/users/@a:hs/override_ratelimit": "",
	} {
		code, out := call(t, s, http.MethodGet, path, nil)
		if _, ok := out[key]; code != 200 || key != "" && !ok {
			t.Errorf("%s: %d %v, want 200 with %q", path, code, out, key)
		}
		nobody := strings.Replace(path, "@a:hs", "@nobody:hs", 1)
		if code, out := call(t, s, http.MethodGet, nobody, nil); code != 404 || out["errcode"] != "M_NOT_FOUND" {
			t.Errorf("%s: %d %v, want 404 M_NOT_FOUND", nobody, code, out)
		}
	}
}

func texts(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
