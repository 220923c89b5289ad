package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/synapse"
)

// Notice sends the row's message to its user as a server notice, once: a
// resumed or repeated row finds its notice delivered and sends none.
const Notice Action = "notice"

var noticeAction = &Spec{Name: Notice, Kind: UserRow, Columns: []string{"message", "formatted"},
	parse: parseNotice, plan: withUser(false, planNotice)}

// noticeMarker is the content field that carries a notice's transaction
// id, so that a later run can find the notice in the user's rooms.
const noticeMarker = "com.github.synbatch.txn_id"

// notice is a notice row's payload.
type notice struct {
	message   string
	formatted string // HTML; "" for plain text only
}

func parseNotice(p *parser, _ *Job) any {
	n := &notice{}
	var ok bool
	if n.message, ok = p.scalar("message"); !ok {
		p.bad("message", "a notice row needs a message (plain text; formatted may add HTML)")
	}
	n.formatted, _ = p.scalar("formatted")
	return n
}

// noticeTxn is the transaction id of a row's notice: derived from the
// row's key (its cells and the options that give them meaning), so it is
// the same on resume and in any later run of the same row, and different
// for any other row.
func noticeTxn(j *Job) string { return "synbatch-" + j.Key }

func (n *notice) content(txn string) map[string]any {
	c := map[string]any{"msgtype": "m.text", "body": n.message, noticeMarker: txn}
	if n.formatted != "" {
		c["format"] = "org.matrix.custom.html"
		c["formatted_body"] = n.formatted
	}
	return c
}

func planNotice(ctx context.Context, j *Job, env Env, _ *State, p *Plan, _ *synapse.User) error {
	n, c, id, txn := j.payload.(*notice), env.Client, p.UserID, noticeTxn(j)
	// Synapse dedupes a transaction id only in memory, for 30 to 60
	// minutes, per admin token: a resume after that (or after a restart of
	// Synapse, or with another token) would send the notice again. So the
	// user's rooms are searched for it first.
	ev, room, err := deliveredNotice(ctx, c, id, txn)
	if err != nil {
		return err
	}
	if ev != "" {
		p.note("notice delivered already as %s in %s", ev, room)
		return nil
	}
	p.add("notice", FieldChange{Field: "notice", New: "sent: " + formats.Quote(n.message)}, func(ctx context.Context) (int, error) {
		// On MAS the token has no id Synapse's transaction cache can key
		// on: the notice goes without one (its content still carries txn,
		// which the check above finds after a lost answer).
		sendTxn := txn
		if env.MAS != nil {
			sendTxn = ""
		}
		_, err := c.SendServerNotice(ctx, id, sendTxn, n.content(txn))
		return 200, err
	})
	return nil
}

// deliveredNotice finds the notice with transaction id txn in the rooms
// the user is in, was invited to or left, that look like a server notices
// room (made by someone else, at most two members): the event and room
// ids, or "" when it was never delivered.
func deliveredNotice(ctx context.Context, c *synapse.Client, userID, txn string) (eventID, roomID string, err error) {
	ms, _, err := c.Memberships(ctx, userID)
	if err != nil {
		return "", "", fmt.Errorf("read the rooms of %s: %w", userID, err)
	}
	rooms := make([]string, 0, len(ms))
	for r, m := range ms {
		if m == "invite" || m == "join" || m == "leave" {
			rooms = append(rooms, r)
		}
	}
	slices.Sort(rooms)
	for _, r := range rooms {
		info, err := room(ctx, c, r)
		if err != nil {
			return "", "", err
		}
		if info == nil || info.JoinedMembers > 2 || info.Creator == nil || *info.Creator == userID {
			continue
		}
		ev, err := findMarked(ctx, c, r, *info.Creator, txn)
		if err != nil || ev != "" {
			return ev, r, err
		}
	}
	return "", "", nil
}

// findMarked pages through the messages sender sent to a room, newest
// first, for the one carrying txn. Only a page without an end token ends
// the room: Synapse filters again after its query, so a page may come
// empty with more behind it.
func findMarked(ctx context.Context, c *synapse.Client, roomID, sender, txn string) (string, error) {
	filter := synapse.EventFilter{Types: []string{"m.room.message"}, Senders: []string{sender}}
	from := ""
	for {
		page, err := c.RoomMessages(ctx, roomID, synapse.Backward, from, 100, filter)
		if err != nil {
			return "", fmt.Errorf("read the messages of %s: %w", roomID, err)
		}
		for _, raw := range page.Chunk {
			var ev struct {
				EventID string         `json:"event_id"`
				Content map[string]any `json:"content"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				return "", fmt.Errorf("read the messages of %s: %w", roomID, err)
			}
			if ev.Content[noticeMarker] == txn {
				return ev.EventID, nil
			}
		}
		if page.End == "" || page.End == from {
			return "", nil
		}
		from = page.End
	}
}
