package jobs

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/synapse"
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

// TestDeliveredNoticeBehindAnEmptyPageIsFound: Synapse filters a messages
// page again after its query, so a page may come empty with more behind it;
// the search for a delivered notice must go on to the end token, or the
// notice would be sent a second time.
func TestDeliveredNoticeBehindAnEmptyPageIsFound(t *testing.T) {
	const user, roomID, txn = "@u:hs", "!n:hs", "synbatch-k1"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/memberships"):
			fmt.Fprintf(w, `{"memberships":{%q:"join"}}`, roomID)
		case strings.HasSuffix(r.URL.Path, "/messages"):
			if r.URL.Query().Get("dir") != "b" {
				t.Errorf("messages read in dir %q, want b", r.URL.Query().Get("dir"))
			}
			if r.URL.Query().Get("from") == "" {
				fmt.Fprint(w, `{"chunk":[],"end":"p2"}`) // all filtered out
				return
			}
			fmt.Fprintf(w, `{"chunk":[{"event_id":"$e","type":"m.room.message","sender":"@notices:hs","content":{"body":"hi",%q:%q}}]}`, noticeMarker, txn)
		case strings.Contains(r.URL.Path, "/rooms/"):
			fmt.Fprintf(w, `{"room_id":%q,"joined_members":2,"creator":"@notices:hs"}`, roomID)
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	c, _ := synapse.New(synapse.Config{Server: hs.URL, Token: "t"})
	ev, room, err := deliveredNotice(context.Background(), c, user, txn)
	if err != nil || ev != "$e" || room != roomID {
		t.Fatalf("deliveredNotice = %q, %q, %v; want $e in %s", ev, room, err, roomID)
	}
}
