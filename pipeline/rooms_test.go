package pipeline

import (
	"strings"
	"testing"

	"github.com/synbatch/synbatch/jobs"
)

func TestValidateKnowsRoomRowsByTheirRoom(t *testing.T) {
	r := newRig(t)
	// Room rows carry no subject user: they must not all collide on "".
	// Two rows for one room that disagree are a problem; the same row twice
	// is a repeat; a room row and a user row never collide.
	src := r.manifest("m.csv", "action,room_id,user_id\n"+
		"block,!a:hs.test,\n"+
		"join,!b:hs.test,@x:hs.test\n"+
		"join,!b:hs.test,@x:hs.test\n"+
		"delete-room,!a:hs.test,\n"+
		"delete-media,,@x:hs.test\n")
	ch, err := Validate(src)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range ch.Problems {
		msgs = append(msgs, p.Error())
	}
	got := strings.Join(msgs, "\n")
	if ch.Total != 1 || !strings.Contains(got, "m.csv:5:room_id: this row's room is also on row 2") {
		t.Fatalf("problems:\n%s", got)
	}
	if ch.DupOf[4] != 3 || len(ch.DupOf) != 1 {
		t.Fatalf("row 4 should be a repeat of row 3, and only it: %v", ch.DupOf)
	}
	if ch.Actions[jobs.Join] != 2 || ch.Actions[jobs.DeleteMedia] != 1 {
		t.Fatalf("actions %v", ch.Actions)
	}
}
