package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// DeleteRoom deletes a room (by default purging it) and polls the server's
// deletion task until it ends.
const DeleteRoom Action = "delete-room"

var deleteRoomAction = &Spec{Name: DeleteRoom, Kind: RoomRow,
	Columns:     []string{"new_room_user_id", "room_name", "message", "block", "purge", "force_purge"},
	Destructive: true, parse: parseDeletion, plan: planDeleteRoom}

// deletion is a delete-room row's payload: nil leaves Synapse's default
// (no block, purge).
type deletion struct {
	NewRoomUserID     string
	RoomName, Message *string
	BlockRoom         *bool
	Purge, ForcePurge *bool
}

func parseDeletion(p *parser, _ *Job) any {
	d := &deletion{NewRoomUserID: p.userID("new_room_user_id")}
	if v, ok := p.scalar("room_name"); ok {
		d.RoomName = &v
	}
	if v, ok := p.scalar("message"); ok {
		d.Message = &v
	}
	d.BlockRoom = p.boolean("block")
	d.Purge = p.boolean("purge")
	d.ForcePurge = p.boolean("force_purge")
	if d.ForcePurge != nil && *d.ForcePurge && d.Purge != nil && !*d.Purge {
		p.bad("force_purge", "force_purge needs purge (Synapse ignores it without)")
	}
	return d
}

// planDeleteRoom plans a deletion. A row whose task an earlier attempt
// started polls it: the task id is journaled as soon as the server returns
// it, and a row that has one never starts a second.
func planDeleteRoom(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	if st.TaskID != "" {
		done, err := resumeDelete(ctx, j, env, st, p)
		if done || err != nil {
			return err
		}
	}
	return inRoom(planDeleteRoomIn)(ctx, j, env, st, p)
}

// deleteOptions is the body of the row's deletion.
func (j *deletion) deleteOptions() synapse.DeleteRoomOptions {
	o := synapse.DeleteRoomOptions{NewRoomUserID: j.NewRoomUserID, Block: j.BlockRoom, Purge: j.Purge, ForcePurge: j.ForcePurge}
	if j.RoomName != nil {
		o.RoomName = *j.RoomName
	}
	if j.Message != nil {
		o.Message = *j.Message
	}
	return o
}

// deleteText says what the deletion does, for plans.
func (j *deletion) deleteText() string {
	parts := []string{"deleted"}
	if j.Purge == nil || *j.Purge {
		parts[0] = "deleted and purged"
		if j.ForcePurge != nil && *j.ForcePurge {
			parts[0] += " (forced)"
		}
	} else {
		parts[0] = "shut down (not purged)"
	}
	if j.BlockRoom != nil && *j.BlockRoom {
		parts = append(parts, "blocked")
	}
	if j.NewRoomUserID != "" {
		parts = append(parts, "local members moved to a new room of "+j.NewRoomUserID)
	}
	return strings.Join(parts, ", ")
}

// resumeDelete handles a delete-room row whose task an earlier attempt
// started: a running task is polled, a finished one ends the row; a failed
// (or forgotten) one is dropped so the row is planned again from what the
// server holds. done says the plan is complete.
func resumeDelete(ctx context.Context, j *Job, env Env, st *State, p *Plan) (done bool, err error) {
	del := j.payload.(*deletion)
	t, err := env.Client.DeleteStatus(ctx, st.TaskID)
	switch {
	case synapse.IsNotFound(err):
		st.TaskID = "" // older than a week: Synapse forgot it
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the status of room deletion %s: %w", st.TaskID, err)
	case t.Status == synapse.TaskComplete:
		p.UserID = cmp.Or(t.RoomID, j.RoomID)
		p.Reason = "deleted by task " + t.DeleteID
		return true, nil
	case synapse.TaskRunning(t.Status):
		p.UserID = cmp.Or(t.RoomID, j.RoomID)
		pollStep(env, st, p, t.DeleteID, false, pollDelete, "room", FieldChange{Field: "room", Old: "being deleted by task " + t.DeleteID, New: del.deleteText()})
		return true, nil
	}
	st.TaskID = "" // failed or cancelled: plan again
	return false, nil
}

func planDeleteRoomIn(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	del, c, id := j.payload.(*deletion), env.Client, p.UserID
	r, err := room(ctx, c, id)
	if err != nil {
		return err
	}
	tasks, err := c.RoomDeleteTasks(ctx, id)
	if err != nil {
		return fmt.Errorf("read deletion tasks of %s: %w", id, err)
	}
	// A deletion already running (another run's, one whose answer was
	// lost, or one whose id a killed run never journaled) is polled, not
	// doubled: Synapse starts a second task while the first is only
	// scheduled.
	running, err := runningDeletion(ctx, c, id, tasks)
	if err != nil {
		return err
	}
	if running != "" {
		pollStep(env, st, p, running, true, pollDelete, "room", FieldChange{Field: "room", Old: roomText(r) + ", being deleted by task " + running, New: del.deleteText()})
		return nil
	}
	wantBlock := del.BlockRoom != nil && *del.BlockRoom
	blocked := false
	if wantBlock {
		if blocked, _, err = c.RoomBlock(ctx, id); err != nil {
			return fmt.Errorf("read block status of %s: %w", id, err)
		}
	}
	purge := del.Purge == nil || *del.Purge
	switch {
	case r == nil && wantBlock && !blocked:
		// Gone, or never here: what is left to do is the block.
		p.add("blocked", FieldChange{Field: "room", Old: "not known to this server", New: "blocked"}, func(ctx context.Context) (int, error) {
			return 200, c.SetRoomBlock(ctx, id, true)
		})
		return nil
	case r == nil:
		for _, t := range tasks {
			if t.Status == synapse.TaskComplete {
				p.Reason = "already deleted by task " + t.DeleteID
				return nil
			}
		}
		// A typo, or a room deleted over a week ago (Synapse forgets
		// finished tasks then): skipped, so it shows in the summary.
		p.Kind, p.Reason = KindSkip, "room not known to this server (never here, or deleted more than a week ago)"
		return nil
	case !purge && r.JoinedLocalMembers == 0 && (!wantBlock || blocked):
		// Without purge the room stays in the database: a shut-down room is
		// one no local user is in any more.
		p.Reason = "already shut down: no local member left"
		return nil
	}
	opt := del.deleteOptions()
	p.steps = append(p.steps, step{fields: []string{"room"}, do: func(ctx context.Context) (int, error) {
		taskID, err := c.DeleteRoom(ctx, id, opt)
		var se *synapse.Error
		if errors.As(err, &se) && se.Status == 400 && strings.Contains(se.Message, "already in progress") {
			// Another deletion began since the plan: poll that one.
			return 200, adoptRunning(ctx, env, st, id)
		}
		return startedStep(ctx, env, st, taskID, err, pollDelete)
	}})
	p.Changes = append(p.Changes, FieldChange{Field: "room", Old: roomText(r), New: del.deleteText()})
	return nil
}

// adoptRunning journals and polls the deletion task running for a room.
func adoptRunning(ctx context.Context, env Env, st *State, roomID string) error {
	tasks, err := env.Client.RoomDeleteTasks(ctx, roomID)
	if err != nil {
		return err
	}
	running, err := runningDeletion(ctx, env.Client, roomID, tasks)
	if err != nil || running == "" {
		return err // or finished meanwhile
	}
	if err := startedTask(env, st, running); err != nil {
		return err
	}
	return pollDelete(ctx, env, running)
}

// runningDeletion returns the id of a deletion of the room that is
// scheduled or running, or "". tasks is the room's delete status, which
// leaves scheduled tasks out: the server's task list is read for those.
func runningDeletion(ctx context.Context, c *synapse.Client, roomID string, tasks []synapse.DeleteTask) (string, error) {
	for _, t := range tasks {
		if synapse.TaskRunning(t.Status) {
			return t.DeleteID, nil
		}
	}
	id, err := c.RunningTask(ctx, synapse.TaskDeleteRoom, roomID)
	if err != nil {
		return "", fmt.Errorf("running deletions of %s: %w", roomID, err)
	}
	return id, nil
}
