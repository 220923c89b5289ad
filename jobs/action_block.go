package jobs

import (
	"cmp"
	"context"
	"fmt"
)

// Block blocks a room: joins to it are refused. A room this server never
// saw can be blocked too.
const Block Action = "block"

var blockAction = &Spec{Name: Block, Kind: RoomRow, plan: inRoom(planBlock(true))}

// planBlock plans block (want) and unblock.
func planBlock(want bool) planFunc {
	return func(ctx context.Context, _ *Job, env Env, _ *State, p *Plan) error {
		c, id := env.Client, p.UserID
		blocked, by, err := c.RoomBlock(ctx, id)
		if err != nil {
			return fmt.Errorf("read block status of %s: %w", id, err)
		}
		if blocked == want {
			p.Reason = "already unblocked"
			if want {
				p.Reason = "already blocked by " + cmp.Or(by, "an admin")
			}
			return nil
		}
		// Synapse blocks a room it does not know too: joins to it are refused.
		r, err := room(ctx, c, id)
		if err != nil {
			return err
		}
		what := "unblocked"
		if want {
			what = "blocked"
		}
		p.add("blocked", FieldChange{Field: "room", Old: roomText(r), New: what}, func(ctx context.Context) (int, error) {
			return 200, c.SetRoomBlock(ctx, id, want)
		})
		return nil
	}
}
