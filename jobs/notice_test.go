package jobs

import (
	"testing"
)

// TestNoticeTxnFollowsTheRowNotItsPlace: the notice's transaction id is
// the same for the same row wherever it stands (a resume, a later run of
// an edited manifest) and differs when the message or the user differs.
func TestNoticeTxnFollowsTheRowNotItsPlace(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	parse := func(num int, kv ...string) string {
		r := row(append([]string{"action", "notice"}, kv...)...)
		r.Num = num
		j, probs := Parse(r, opt)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return noticeTxn(j)
	}
	a := parse(2, "user_id", "@a:hs", "message", "hello")
	if b := parse(900, "user_id", "@a:hs", "message", "hello"); a != b {
		t.Errorf("the same row at another place has txn %s, want %s", b, a)
	}
	if b := parse(2, "user_id", "@a:hs", "message", "hello again"); a == b {
		t.Error("another message has the same txn")
	}
	if b := parse(2, "user_id", "@b:hs", "message", "hello"); a == b {
		t.Error("another user has the same txn")
	}
}

func TestNoticeNeedsAMessage(t *testing.T) {
	_, probs := Parse(row("action", "notice", "user_id", "@a:hs", "formatted", "<b>x</b>"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) != 1 || probs[0].Column != "message" {
		t.Fatalf("problems %v", probs)
	}
}
