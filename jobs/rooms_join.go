package jobs

import (
	"context"
	"fmt"
	"slices"

	"github.com/synbatch/synbatch/synapse"
)

// joinable checks, with reads only, that Synapse's join API can put a user
// in the room: it must know the room, and unless the room is public the API
// first invites the user as the admin, which only a member can do
// (rest/admin/rooms.py, JoinRoomAliasServlet). Otherwise the row is a
// conflict, found before an account is created for it. label is the room
// as the row names it.
func joinable(ctx context.Context, c *synapse.Client, label, roomID string) error {
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
	return nil
}
