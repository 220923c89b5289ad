package export

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestSeenByFollowsHistoryVisibility walks timelines through seenBy as
// Synapse's visibility rules would show them to @u:hs.
func TestSeenByFollowsHistoryVisibility(t *testing.T) {
	type ev struct {
		typ, key, content, prev string // content and prev: the membership or visibility
		want                    bool
	}
	msg := func(want bool) ev { return ev{typ: "m.room.message", want: want} }
	member := func(m, prev string, want bool) ev {
		return ev{typ: "m.room.member", key: "@u:hs", content: m, prev: prev, want: want}
	}
	hv := func(v, prev string, want bool) ev {
		return ev{typ: "m.room.history_visibility", content: v, prev: prev, want: want}
	}
	for name, timeline := range map[string][]ev{
		"joined": {
			msg(true), // shared until the room says otherwise
			hv("joined", "shared", true), msg(false),
			member("join", "", true), msg(true),
			member("leave", "join", true), msg(false),
		},
		"invited": {
			hv("invited", "", true), msg(false),
			member("invite", "", true), msg(true),
			member("join", "invite", true), msg(true),
			hv("joined", "invited", true), member("ban", "join", true), msg(false),
		},
		"shared before joining": {
			msg(true), member("join", "", true), msg(true),
		},
		"world readable": {
			hv("world_readable", "", true), msg(true), hv("joined", "world_readable", true), msg(false),
		},
		"aliases never": {
			{typ: "m.room.aliases", key: "hs", want: false}, msg(true),
		},
	} {
		s := &seenBy{user: "@u:hs", visibility: "shared"}
		for i, e := range timeline {
			m := map[string]any{"event_id": fmt.Sprintf("$%d", i), "type": e.typ, "sender": "@x:hs"}
			if e.typ == "m.room.member" || e.typ == "m.room.history_visibility" || e.key != "" {
				m["state_key"] = e.key
			}
			field := "membership"
			if e.typ == "m.room.history_visibility" {
				field = "history_visibility"
			}
			m["content"] = map[string]string{field: e.content}
			if e.prev != "" {
				m["unsigned"] = map[string]any{"prev_content": map[string]string{field: e.prev}}
			}
			raw, _ := json.Marshal(m)
			if got, _ := s.sees(raw); got != e.want {
				t.Errorf("%s: event %d (%s %s, before %s): seen %v, want %v", name, i, e.typ, e.content, e.prev, got, e.want)
			}
		}
	}

	s := &seenBy{user: "@u:hs", visibility: "shared", lastEvent: "$leave"}
	if _, last := s.sees(json.RawMessage(`{"event_id":"$leave","type":"m.room.member","state_key":"@u:hs","content":{"membership":"leave"}}`)); !last {
		t.Error("the user's last leave is not the end of what they saw")
	}
}
