package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// PurgeHistory purges a room's history before a point in time and polls
// the server's purge task until it ends.
const PurgeHistory Action = "purge-history"

var purgeHistoryAction = &Spec{Name: PurgeHistory, Kind: RoomRow, Columns: []string{"before", "delete_local_events"},
	Destructive: true, parse: parsePurge, plan: inRoom(planPurgeHistory)}

// purge is a purge-history row's payload.
type purge struct {
	before            int64 // unix ms
	deleteLocalEvents bool
}

func parsePurge(p *parser, _ *Job) any {
	ph := &purge{before: p.before()}
	if b := p.boolean("delete_local_events"); b != nil {
		ph.deleteLocalEvents = *b
	}
	if ph.before == 0 {
		if _, given := p.scalar("before"); !given {
			p.bad("before", "purge-history needs before: a date (2026-01-31), an RFC 3339 time or a unix time in ms")
		}
	}
	return ph
}

func planPurgeHistory(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	ph, c, id := j.payload.(*purge), env.Client, p.UserID
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	before := time.UnixMilli(ph.before).UTC().Format(time.RFC3339)
	what := "history before " + before + " purged"
	if ph.deleteLocalEvents {
		what += " (local events deleted)"
	} else {
		what += " (this server's events only hidden: delete_local_events is false)"
	}
	if st.TaskID != "" {
		status, _, err := c.PurgeStatus(ctx, st.TaskID)
		switch {
		case synapse.IsNotFound(err):
			st.TaskID = "" // forgotten by the server: look at the timeline
		case err != nil:
			return fmt.Errorf("read the status of history purge %s: %w", st.TaskID, err)
		case status == synapse.TaskComplete:
			p.Reason = "purged by task " + st.TaskID
			return nil
		case status == synapse.TaskFailed || status == synapse.TaskCancelled:
			st.TaskID = ""
		default:
			pollStep(env, st, p, st.TaskID, false, pollPurge, "history", FieldChange{Field: "room", Old: roomText(r) + ", purge " + st.TaskID + " running", New: what})
			return nil
		}
	}
	// A purge started by a POST whose answer was lost (or by anyone else)
	// is polled to its end, not started again.
	running, err := c.RunningTask(ctx, synapse.TaskPurgeHistory, id)
	if err != nil {
		return fmt.Errorf("running history purges of %s: %w", id, err)
	}
	if running != "" {
		pollStep(env, st, p, running, true, pollPurge, "history", FieldChange{Field: "room", Old: roomText(r) + ", purge " + running + " running", New: what})
		return nil
	}
	// Without a task list (an older Synapse) the timeline decides.
	// Synapse 1.160 purges up to the room's newest event at or before the
	// first event it received (server-wide) after the point, and keeps
	// that one: a purged room may still start with one event older than
	// the point (unless the room's own next event is that first one).
	// With at most one older event left a purge deletes nothing more, so
	// the row is done; seeing it as undone would start a second purge on
	// every rerun and after every lost answer.
	first, err := c.FirstEvents(ctx, id, 2)
	if err != nil {
		return fmt.Errorf("read the timeline of %s: %w", id, err)
	}
	if len(first) < 2 || first[1].OriginServerTS >= ph.before {
		p.Reason = "no history before " + before + " left in the timeline"
		return nil
	}
	p.Changes = append(p.Changes, FieldChange{Field: "room", Old: roomText(r), New: what})
	p.steps = append(p.steps, step{fields: []string{"history"}, do: func(ctx context.Context) (int, error) {
		taskID, err := c.PurgeHistory(ctx, id, ph.before, ph.deleteLocalEvents)
		if synapse.IsNotFound(err) {
			return 200, nil // "there is no event to be purged"
		}
		return startedStep(ctx, env, st, taskID, err, pollPurge)
	}})
	return nil
}
