package jobs

import (
	"context"
	"fmt"
	"slices"
)

// Join joins each of the row's users (user_id) to the room.
const Join Action = "join"

var joinAction = &Spec{Name: Join, Kind: RoomRow, Columns: []string{"user_id"},
	parse: parseMembers(false), plan: inRoom(planJoin)}

// members is the payload of join and make-room-admin: the users the row
// acts for.
type members []string

func parseMembers(one bool) func(p *parser, j *Job) any {
	return func(p *parser, j *Job) any { return members(p.members(j, one)) }
}

func planJoin(ctx context.Context, j *Job, env Env, _ *State, p *Plan) error {
	c, id := env.Client, p.UserID
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	in, err := c.RoomMembers(ctx, id)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", id, err)
	}
	checked := false
	for _, u := range j.payload.(members) {
		if slices.Contains(in, u) {
			continue
		}
		if err := usable(ctx, c, u); err != nil {
			return err
		}
		if !checked {
			if err := joinable(ctx, env, id, id); err != nil {
				return err
			}
			checked = true
		}
		p.add("members", FieldChange{Field: "room", Old: roomText(r), New: u + " joins"}, func(ctx context.Context) (int, error) {
			return 200, c.Join(ctx, id, u)
		})
	}
	if len(p.steps) == 0 {
		p.Reason = "already joined"
	}
	return nil
}
