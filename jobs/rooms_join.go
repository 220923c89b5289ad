package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// joinable checks, with reads only, that Synapse's join API can put a user
// in the room: it must know the room, and unless the room is public the API
// first invites the user as the admin, which only a member can do
// (rest/admin/rooms.py, JoinRoomAliasServlet). Otherwise the row is a
// conflict, found before an account is created for it. label is the room
// as the row names it.
func joinable(ctx context.Context, env Env, label, roomID string) error {
	if env.Rooms.recent(roomID) {
		return nil
	}
	if err := checkJoinable(ctx, env.Client, label, roomID); err != nil {
		return err
	}
	env.Rooms.remember(roomID)
	return nil
}

// RoomChecks remembers, for one run, when each room was found joinable, so
// rows joining one room check it once a minute, not once a row (its member
// list may be long). Only a room found joinable is remembered: a refused one
// is checked again by each row. A nil *RoomChecks remembers nothing.
type RoomChecks struct{ at sync.Map }

func (r *RoomChecks) recent(roomID string) bool {
	if r == nil {
		return false
	}
	at, ok := r.at.Load(roomID)
	return ok && time.Since(at.(time.Time)) < joinableFor
}

func (r *RoomChecks) remember(roomID string) {
	if r != nil {
		r.at.Store(roomID, time.Now())
	}
}

const joinableFor = time.Minute

func checkJoinable(ctx context.Context, c *synapse.Client, label, roomID string) error {
	r, err := c.GetRoom(ctx, roomID)
	if synapse.IsNotFound(err) {
		return rowErr("room %s is not known to this server", label)
	}
	if err != nil {
		return fmt.Errorf("look up room %s: %w", label, err)
	}
	rule := "has no join rule"
	switch {
	case r.JoinRules == nil:
	case *r.JoinRules == "public":
		return nil
	case *r.JoinRules == "invite":
		rule = "is invite-only"
	default:
		rule = "has join rule " + *r.JoinRules
	}
	admin, err := c.Self(ctx)
	if err != nil {
		return err
	}
	in, err := c.RoomMembers(ctx, roomID)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", label, err)
	}
	if !slices.Contains(in, admin) {
		return conflict("room %s %s and %s is not in it: Synapse joins users to a room that is not public only by an invite from the admin "+
			"(invite %s to the room, or make it public)", label, rule, admin, admin)
	}
	return canInvite(ctx, c, label, roomID, admin)
}

// canInvite checks the admin's power level against the room's invite level
// (both 0 when the room does not set them). A creator of a room version
// with creator power (12) stands above levels.
func canInvite(ctx context.Context, c *synapse.Client, label, roomID, admin string) error {
	pls, err := c.RoomState(ctx, roomID, "m.room.power_levels")
	if err != nil {
		return fmt.Errorf("read m.room.power_levels of %s: %w", label, err)
	}
	if len(pls) == 0 {
		return nil
	}
	var pl struct {
		powerLevels
		Invite json.RawMessage `json:"invite"`
	}
	_ = json.Unmarshal(pls[0].Content, &pl)
	need, _ := level(pl.Invite)
	have, ok := level(pl.Users[admin])
	if !ok {
		have, _ = level(pl.UsersDefault)
	}
	if have >= need {
		return nil
	}
	rp, err := readRoomPower(ctx, c, roomID)
	if err != nil {
		return err
	}
	if rp.creatorPower && slices.Contains(rp.creators, admin) {
		return nil
	}
	return conflict("room %s is not public and %s has power level %d there, below the %d it takes to invite: "+
		"Synapse joins users to it only by an invite from the admin", label, admin, have, need)
}
