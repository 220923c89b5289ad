package fakesynapse

import (
	"net/http"
	"slices"
)

// exportRoutes are the reads of a user's data bundle (export data) beyond
// the account and its devices: what Synapse 1.160 answers for an account
// with no sessions, account data, pushers, rate limit or media of its own,
// and the rooms the fake has it joined to.
func (s *Server) exportRoutes() []route {
	const a = "_synapse/admin/"
	user := func(answer func(id string) any) func(http.ResponseWriter, *http.Request, []string) {
		return func(w http.ResponseWriter, _ *http.Request, seg []string) {
			id := seg[4] // .../v1/whois/<id>, .../v1/users/<id>/<what>
			if s.User(id) == nil {
				errJSON(w, 404, "M_NOT_FOUND", "User not found")
				return
			}
			writeJSON(w, 200, answer(id))
		}
	}
	return []route{
		{"GET", a + "v1/whois/*", user(func(id string) any {
			return map[string]any{"user_id": id, "devices": map[string]any{}}
		})},
		{"GET", a + "v1/users/*/joined_rooms", user(func(id string) any {
			rooms := []string{}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, r := range s.rooms {
				if slices.Contains(r.Members, id) {
					rooms = append(rooms, r.ID)
				}
			}
			slices.Sort(rooms)
			return map[string]any{"joined_rooms": rooms, "total": len(rooms)}
		})},
		{"GET", a + "v1/users/*/accountdata", user(func(string) any {
			return map[string]any{"account_data": map[string]any{"global": map[string]any{}, "rooms": map[string]any{}}}
		})},
		{"GET", a + "v1/users/*/pushers", user(func(string) any { return map[string]any{"pushers": []any{}, "total": 0} })},
		{"GET", a + "v1/users/*/override_ratelimit", user(func(string) any { return map[string]any{} })},
		{"GET", a + "v1/users/*/media", user(func(string) any { return map[string]any{"media": []any{}, "total": 0} })},
	}
}
