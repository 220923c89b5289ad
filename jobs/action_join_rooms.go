package jobs

import (
	"context"
	"fmt"

	"github.com/synbatch/synbatch/synapse"
)

// JoinRooms joins the user to each of the row's rooms they are not in.
const JoinRooms Action = "join-rooms"

var joinRoomsAction = &Spec{Name: JoinRooms, Kind: UserRow, Columns: []string{"rooms"},
	parse: parseJoinRooms, plan: withUser(false, planJoinRooms)}

// roomList is a join-rooms row's payload: room ids or aliases.
type roomList []string

func parseJoinRooms(p *parser, _ *Job) any {
	rooms := p.rooms()
	if len(rooms) == 0 {
		p.bad("rooms", "join-rooms needs rooms separated by ;")
	}
	return roomList(rooms)
}

func planJoinRooms(ctx context.Context, j *Job, env Env, _ *State, p *Plan, _ *synapse.User) error {
	joined, err := env.Client.JoinedRooms(ctx, p.UserID)
	if err != nil {
		return fmt.Errorf("read rooms of %s: %w", p.UserID, err)
	}
	return planJoins(ctx, env, p, j.payload.(roomList), joined)
}
