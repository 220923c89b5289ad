package jobs

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRoomRows(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	j, probs := Parse(row("action", "join", "room_id", "#lobby:hs", "user_id", "@a:hs; b ;a"), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if j.RoomID != "#lobby:hs" || !slices.Equal(j.payload.(members), []string{"@a:hs", "@b:hs"}) || j.UserID != "" {
		t.Fatalf("join: %+v", j)
	}
	if j.Identity() != "room:#lobby:hs" || j.Subject() != "#lobby:hs" {
		t.Fatalf("identity %q subject %q", j.Identity(), j.Subject())
	}

	j, probs = Parse(row("action", "delete-room", "room_id", "!r:hs", "new_room_user_id", "mod", "room_name", "Moved",
		"message", "Closed", "block", "yes", "purge", "true", "force_purge", "1"), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	d := j.payload.(*deletion)
	if d.NewRoomUserID != "@mod:hs" || *d.RoomName != "Moved" || *d.Message != "Closed" || !*d.BlockRoom || !*d.Purge || !*d.ForcePurge {
		t.Fatalf("delete-room: %+v", j)
	}
	o := d.deleteOptions()
	if o.NewRoomUserID != "@mod:hs" || o.RoomName != "Moved" || !*o.Block || !*o.ForcePurge {
		t.Fatalf("delete options %+v", o)
	}

	j, probs = Parse(row("action", "purge-history", "room_id", "!r:hs", "before", "2026-01-31", "delete_local_events", "true"), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if ph := j.payload.(*purge); ph.before != time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC).UnixMilli() || !ph.deleteLocalEvents {
		t.Fatalf("purge-history: %+v", j)
	}

	j, probs = Parse(row("action", "delete-media", "user_id", "a", "before", "1767225600000", "min_size", "1024"), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if f := j.payload.(*mediaFilter); j.UserID != "@a:hs" || f.before != 1767225600000 || *f.minSize != 1024 || j.Identity() != "@a:hs" {
		t.Fatalf("delete-media: %+v", j)
	}

	// Room rows need no --match-by value: their subject is the room.
	if _, probs := Parse(row("action", "block", "room_id", "!r:hs"), ParseOptions{File: "m.csv", ServerName: "hs", MatchBy: "email"}); len(probs) > 0 {
		t.Fatal(probs)
	}
	// The cells are the row's identity.
	a, _ := Parse(row("action", "delete-room", "room_id", "!r:hs"), opt)
	b, _ := Parse(row("action", "delete-room", "room_id", "!r:hs", "block", "true"), opt)
	if a.Key == b.Key {
		t.Fatal("block does not change the key")
	}
}

func TestParseRoomProblems(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"action", "block"}, "m.csv:7:room_id: missing: block rows need a room_id"},
		{[]string{"action", "block", "room_id", "lobby"}, `m.csv:7:room_id: "lobby" is not a room id`},
		{[]string{"action", "block", "room_id", "!r:hs", "user_id", "a"}, "m.csv:7:user_id: action block does not use this column"},
		{[]string{"action", "delete-room", "room_id", "!r:hs", "email", "a@b.org"}, "m.csv:7:email: delete-room rows name their room by room_id"},
		{[]string{"action", "join", "room_id", "!r:hs"}, "m.csv:7:user_id: missing: join needs the user"},
		{[]string{"action", "join", "room_id", "!r:hs", "user_id", "a;Bad"}, `m.csv:7:user_id: "Bad": a localpart may hold only`},
		{[]string{"action", "join", "room_id", "!r:hs", "user_id", "@a:elsewhere"}, "not to this server"},
		{[]string{"action", "make-room-admin", "room_id", "!r:hs", "user_id", "a;b"}, "make-room-admin takes one user"},
		{[]string{"action", "delete-room", "room_id", "!r:hs", "new_room_user_id", "@x:other"}, "m.csv:7:new_room_user_id:"},
		{[]string{"action", "delete-room", "room_id", "!r:hs", "purge", "no", "force_purge", "yes"}, "m.csv:7:force_purge: force_purge needs purge"},
		{[]string{"action", "delete-room", "room_id", "!r:hs", "block", "maybe"}, "m.csv:7:block:"},
		{[]string{"action", "block", "room_id", "!r:hs", "block", "true"}, "m.csv:7:block: action block does not use this column"},
		{[]string{"action", "purge-history", "room_id", "!r:hs"}, "m.csv:7:before: purge-history needs before"},
		{[]string{"action", "purge-history", "room_id", "!r:hs", "before", "1767225600"}, "reads as seconds since 1970"},
		{[]string{"action", "purge-history", "room_id", "!r:hs", "before", "last tuesday"}, "m.csv:7:before: \"last tuesday\" is not a time"},
		{[]string{"action", "purge-history", "room_id", "!r:hs", "before", "1969-12-31"}, "before 1971"},
		{[]string{"action", "delete-media", "user_id", "a", "min_size", "-5"}, "m.csv:7:min_size:"},
		{[]string{"action", "delete-media", "user_id", "a", "delete_local_events", "true"}, "m.csv:7:delete_local_events: action delete-media does not use this column"},
		{[]string{"action", "quarantine-media"}, "m.csv:7:user_id: missing"},
		{[]string{"action", "upsert", "user_id", "a", "room_id", "!r:hs"}, "m.csv:7:room_id: action upsert is about a user"},
		{[]string{"action", "upsert", "user_id", "a", "room_name", "x"}, "m.csv:7:room_name: action upsert does not use this column"},
	} {
		_, probs := Parse(row(c.kv...), opt)
		var got []string
		for _, p := range probs {
			got = append(got, p.Error())
		}
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%v: problems %q, want %q", c.kv, got, c.want)
		}
	}
}

func TestParseBefore(t *testing.T) {
	jan31 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"2026-01-31", jan31, ""},
		{"2026-01-31T00:00:00Z", jan31, ""},
		{"2026-01-31T01:00:00+01:00", jan31, ""},
		{"2026-01-31 12:00:00", jan31 + 12*3600_000, ""},
		{"1769817600000", jan31, ""},
		{"46053", jan31, ""},                 // Excel's serial number of 2026-01-31
		{"46053.5", jan31 + 12*3600_000, ""}, // and noon that day
		{"1769817600", 0, "seconds"},
		{"31/01/2026", 0, "not a time"},
		{"12", 0, "before 1971"},
	} {
		got, err := ParseBefore(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %d, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestRoomAndMediaActionsAreDestructiveWhereTheyTakeSomething(t *testing.T) {
	for a, want := range map[Action]bool{DeleteRoom: true, PurgeHistory: true, DeleteMedia: true, QuarantineMedia: true,
		Block: false, Unblock: false, MakeRoomAdmin: false, Join: false} {
		if a.Destructive() != want {
			t.Errorf("%s: destructive %v", a, a.Destructive())
		}
		if !slices.Contains(Actions(), a) {
			t.Errorf("%s is not listed in Actions", a)
		}
	}
	if !Join.Room() || DeleteMedia.Room() || JoinRooms.Room() {
		t.Fatal("Room() is wrong")
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 3400: "3.4 kB", 12_000_000: "12.0 MB"} {
		if got := bytesText(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
