package pipeline

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synbatch/synbatch/internal/fakesynapse"
)

// These tests run registration-token, notice and room rows against the
// fake and judge them by the fake's state (and the writes it received),
// never by synbatch's summary; each has a lost-answer case, where the
// server applied a write whose answer never came back.

// loseFirstAnswer lets the fake apply the first request of method whose
// path contains part, then resets the connection instead of answering.
// It returns how many such requests reached the server, the lost one too.
func loseFirstAnswer(r *rig, method, part string) *atomic.Int64 {
	var n atomic.Int64
	var lost atomic.Pointer[http.Request]
	r.fake.Fault = func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != method || !strings.Contains(req.URL.Path, part) || lost.Load() == req {
			return false // the lost request itself, served below
		}
		if n.Add(1) > 1 {
			return false
		}
		lost.Store(req)
		r.fake.Config.Handler.ServeHTTP(&discard{h: http.Header{}}, req)
		reset(w)
		return true
	}
	return &n
}

func TestRegistrationTokenRowsWriteTheFake(t *testing.T) {
	r := newRig(t)
	one := int64(1)
	r.fake.PutToken(fakesynapse.Token{Token: "beta", UsesAllowed: &one})
	src := r.manifest("t.csv", "action,token,uses_allowed\nregistration-token,alpha,3\nregistration-token,beta,5\nregistration-token,gamma,\n")
	if _, err := r.apply(src, filepath.Join(r.dir, "j1"), nil); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{"alpha": "3", "beta": "5", "gamma": "unlimited"} {
		got := r.fake.RegistrationToken(tok)
		if got == nil {
			t.Fatalf("token %s not on the server", tok)
		}
		if s := uses(got); s != want {
			t.Errorf("token %s: uses_allowed %s, want %s", tok, s, want)
		}
	}
	// The same manifest again writes nothing.
	before := r.fake.Writes.Load()
	if _, err := r.apply(src, filepath.Join(r.dir, "j2"), nil); err != nil {
		t.Fatal(err)
	}
	if n := r.fake.Writes.Load() - before; n != 0 {
		t.Fatalf("a second run wrote %d times", n)
	}
}

func uses(t *fakesynapse.Token) string {
	if t.UsesAllowed == nil {
		return "unlimited"
	}
	return fmt.Sprint(*t.UsesAllowed)
}

// TestLostRegistrationTokenCreateIsNotSentAgain: the token's POST landed
// and its answer was lost; the row reads the token back and posts none
// again (a second POST would be refused: the token exists).
func TestLostRegistrationTokenCreateIsNotSentAgain(t *testing.T) {
	r := newRig(t)
	posts := loseFirstAnswer(r, http.MethodPost, "/registration_tokens/new")
	st, err := r.apply(r.manifest("t.csv", "action,token,uses_allowed\nregistration-token,lost1,2\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := r.fake.RegistrationToken("lost1")
	if got == nil || uses(got) != "2" || posts.Load() != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("token %+v after %d POSTs, outcomes %v", got, posts.Load(), st.Outcomes)
	}
}

func TestNoticeRowsDeliverOnce(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@nora:hs.test"})
	src := r.manifest("n.csv", "action,user_id,message\nnotice,nora,maintenance at 22:00\n")
	if _, err := r.apply(src, filepath.Join(r.dir, "j1"), nil); err != nil {
		t.Fatal(err)
	}
	// A later run (another journal: nothing remembered) finds the notice
	// in the user's notice room and sends none.
	if _, err := r.apply(src, filepath.Join(r.dir, "j2"), nil); err != nil {
		t.Fatal(err)
	}
	got := r.fake.Notices("@nora:hs.test")
	if len(got) != 1 || got[0].Content["body"] != "maintenance at 22:00" {
		t.Fatalf("notices %+v, want one", got)
	}
}

// TestLostNoticeAnswerSendsNoSecond: the notice was delivered and its
// answer lost; the row finds it in the user's room and sends none again.
func TestLostNoticeAnswerSendsNoSecond(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@nils:hs.test"})
	sends := loseFirstAnswer(r, http.MethodPut, "/send_server_notice/")
	st, err := r.apply(r.manifest("n.csv", "action,user_id,message\nnotice,nils,hello\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.fake.Notices("@nils:hs.test"); len(got) != 1 || sends.Load() != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("notices %+v after %d sends, outcomes %v", got, sends.Load(), st.Outcomes)
	}
}

func TestRoomRowsWriteTheFake(t *testing.T) {
	r := newRig(t)
	for _, u := range []string{"@owner:hs.test", "@jo:hs.test", "@ada:hs.test"} {
		r.fake.Put(fakesynapse.User{Name: u})
	}
	r.fake.PutRoom(fakesynapse.Room{ID: "!pub:hs.test", JoinRule: "public", Members: []string{"@owner:hs.test"}})
	r.fake.PutRoom(fakesynapse.Room{ID: "!priv:hs.test", Members: []string{"@owner:hs.test"}})
	r.fake.PutRoom(fakesynapse.Room{ID: "!old:hs.test", JoinRule: "public", Members: []string{"@owner:hs.test"}})
	old := time.Now().Add(-48 * time.Hour).UnixMilli()
	r.fake.PutRoom(fakesynapse.Room{ID: "!hist:hs.test", Members: []string{"@owner:hs.test"},
		Events: []fakesynapse.Event{{ID: "$1", Type: "m.room.message", Sender: "@owner:hs.test", TS: old},
			{ID: "$2", Type: "m.room.message", Sender: "@owner:hs.test", TS: old + 1},
			{ID: "$3", Type: "m.room.message", Sender: "@owner:hs.test", TS: time.Now().UnixMilli()}}})
	src := r.manifest("r.csv", "action,room_id,user_id,before\n"+
		"join,!pub:hs.test,@jo:hs.test,\n"+
		"make-room-admin,!priv:hs.test,@ada:hs.test,\n"+
		"block,!blk:hs.test,,\n"+
		"delete-room,!old:hs.test,,\n"+
		"purge-history,!hist:hs.test,,"+time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z")+"\n")
	st, err := r.apply(src, filepath.Join(r.dir, "j1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub := r.fake.Room("!pub:hs.test"); pub == nil || len(pub.Members) != 2 || pub.Members[1] != "@jo:hs.test" {
		t.Errorf("join: room %+v", pub)
	}
	if priv := r.fake.Room("!priv:hs.test"); priv == nil || priv.Levels["@ada:hs.test"] != 100 || len(priv.Invited) != 1 {
		t.Errorf("make-room-admin: room %+v", priv)
	}
	if !r.fake.Blocked("!blk:hs.test") {
		t.Error("block: the room is not blocked")
	}
	if old := r.fake.Room("!old:hs.test"); old != nil {
		t.Errorf("delete-room: the room is still there: %+v", old)
	}
	if h := r.fake.Room("!hist:hs.test"); h == nil || len(h.Events) != 1 || h.Events[0].ID != "$3" {
		t.Errorf("purge-history: room %+v", h)
	}
	if t.Failed() {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
	before := r.fake.Writes.Load()
	if _, err := r.apply(src, filepath.Join(r.dir, "j2"), nil); err != nil {
		t.Fatal(err)
	}
	if n := r.fake.Writes.Load() - before; n != 0 {
		t.Fatalf("a second run wrote %d times", n)
	}
}

// TestLostRoomDeleteIsPolledNotRepeated: the deletion started and its
// answer (with the delete id) was lost; the row finds the task by the
// room and polls it, starting no second one.
func TestLostRoomDeleteIsPolledNotRepeated(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@owner:hs.test"})
	r.fake.PutRoom(fakesynapse.Room{ID: "!gone:hs.test", Members: []string{"@owner:hs.test"}})
	deletes := loseFirstAnswer(r, http.MethodDelete, "/v2/rooms/")
	st, err := r.apply(r.manifest("r.csv", "action,room_id,block\ndelete-room,!gone:hs.test,true\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if room := r.fake.Room("!gone:hs.test"); room != nil || !r.fake.Blocked("!gone:hs.test") || deletes.Load() != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("room %+v, blocked %t, %d DELETEs, outcomes %v", room, r.fake.Blocked("!gone:hs.test"), deletes.Load(), st.Outcomes)
	}
}

// TestLostRoomDeleteStillScheduledIsPolledNotRepeated: the deletion's
// answer was lost while Synapse's task scheduler had no free slot, so the
// task is "scheduled": the room's delete status does not list it and
// Synapse would start a second deletion. The row finds it in the server's
// task list and polls it (CI saw two deletion tasks for one row here).
func TestLostRoomDeleteStillScheduledIsPolledNotRepeated(t *testing.T) {
	r := newRig(t)
	r.fake.QueuedTaskReads = 3
	r.fake.Put(fakesynapse.User{Name: "@owner:hs.test"})
	r.fake.PutRoom(fakesynapse.Room{ID: "!queued:hs.test", Members: []string{"@owner:hs.test"}})
	deletes := loseFirstAnswer(r, http.MethodDelete, "/v2/rooms/")
	st, err := r.apply(r.manifest("r.csv", "action,room_id\ndelete-room,!queued:hs.test\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if room := r.fake.Room("!queued:hs.test"); room != nil || deletes.Load() != 1 || st.Outcomes["done"] != 1 {
		t.Fatalf("room %+v, %d DELETEs, outcomes %v", room, deletes.Load(), st.Outcomes)
	}
}

// TestLostJoinAnswerJoinsOnce: the join landed and its answer was lost;
// the row reads the members back and the user is in the room once.
func TestLostJoinAnswerJoinsOnce(t *testing.T) {
	r := newRig(t)
	r.fake.Put(fakesynapse.User{Name: "@owner:hs.test"})
	r.fake.Put(fakesynapse.User{Name: "@jay:hs.test"})
	r.fake.PutRoom(fakesynapse.Room{ID: "!pub:hs.test", JoinRule: "public", Members: []string{"@owner:hs.test"}})
	joins := loseFirstAnswer(r, http.MethodPost, "/v1/join/")
	st, err := r.apply(r.manifest("r.csv", "action,room_id,user_id\njoin,!pub:hs.test,@jay:hs.test\n"), filepath.Join(r.dir, "j"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if room := r.fake.Room("!pub:hs.test"); room == nil || len(room.Members) != 2 || joins.Load() != 1 || st.Outcomes["failed"] != 0 {
		t.Fatalf("room %+v after %d joins, outcomes %v", room, joins.Load(), st.Outcomes)
	}
}

// TestLostRoomWritesAreReadBackNotRepeated: a block, a make-room-admin and
// a history purge each land and lose their answer; each row reads the
// room back and sends its write once.
func TestLostRoomWritesAreReadBackNotRepeated(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour).UnixMilli()
	cut := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	for _, c := range []struct {
		name, method, part, row string
		check                   func(*fakesynapse.Server) bool
	}{
		{"block", http.MethodPut, "/block", "block,!r:hs.test,,",
			func(f *fakesynapse.Server) bool { return f.Blocked("!r:hs.test") }},
		{"make-room-admin", http.MethodPost, "/make_room_admin", "make-room-admin,!r:hs.test,@ada:hs.test,",
			func(f *fakesynapse.Server) bool {
				r := f.Room("!r:hs.test")
				return r.Levels["@ada:hs.test"] == 100 && len(r.Invited) == 1
			}},
		{"purge-history", http.MethodPost, "/purge_history/", "purge-history,!r:hs.test,," + cut,
			func(f *fakesynapse.Server) bool {
				r := f.Room("!r:hs.test")
				return len(r.Events) == 1 && r.Events[0].ID == "$3"
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.fake.Put(fakesynapse.User{Name: "@owner:hs.test"})
			r.fake.Put(fakesynapse.User{Name: "@ada:hs.test"})
			r.fake.PutRoom(fakesynapse.Room{ID: "!r:hs.test", Members: []string{"@owner:hs.test"},
				Events: []fakesynapse.Event{{ID: "$1", Type: "m.room.message", Sender: "@owner:hs.test", TS: old},
					{ID: "$2", Type: "m.room.message", Sender: "@owner:hs.test", TS: old + 1},
					{ID: "$3", Type: "m.room.message", Sender: "@owner:hs.test", TS: time.Now().UnixMilli()}}})
			writes := loseFirstAnswer(r, c.method, c.part)
			st, err := r.apply(r.manifest("r.csv", "action,room_id,user_id,before\n"+c.row+"\n"), filepath.Join(r.dir, "j"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(r.fake) || writes.Load() != 1 || st.Outcomes["failed"] != 0 {
				t.Fatalf("room %+v, blocked %t after %d writes, outcomes %v", r.fake.Room("!r:hs.test"), r.fake.Blocked("!r:hs.test"), writes.Load(), st.Outcomes)
			}
		})
	}
}
