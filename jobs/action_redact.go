package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// Redact redacts the events a user sent, in every room they are in (or the
// rooms listed), through Synapse's user redaction task, and polls the task
// until it ends.
const Redact Action = "redact"

var redactAction = &Spec{Name: Redact, Kind: UserRow, Columns: []string{"rooms", "reason", "limit"},
	Destructive: true, parse: parseRedact, plan: withUser(true, planRedact)}

// redaction is a redact row's payload (and the redact column's request on
// a deactivate row).
type redaction struct {
	rooms  []string // ids or aliases; none: the rooms Synapse finds
	reason string
	limit  int64 // per room; 0: Synapse's default (1000)
}

func parseRedact(p *parser, _ *Job) any {
	r := &redaction{rooms: p.rooms()}
	r.reason, _ = p.scalar("reason")
	if n := p.count("limit"); n != nil {
		if *n == 0 {
			p.bad("limit", "limit is the most events redacted per room: at least 1 (leave it empty for Synapse's 1000)")
		}
		r.limit = *n
	}
	return r
}

// text says what the redaction does, for plans.
func (r *redaction) text() string {
	where := "in every room the user is joined to or banned from"
	if len(r.rooms) > 0 {
		where = "in " + strings.Join(r.rooms, ", ")
	}
	s := "events redacted " + where
	if r.limit > 0 {
		s += fmt.Sprintf(" (the newest %d per room)", r.limit)
	}
	if r.reason != "" {
		s += ", reason " + fmt.Sprintf("%q", r.reason)
	}
	return s
}

func planRedact(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *synapse.User) error {
	r := j.payload.(*redaction)
	if st.TaskID != "" {
		started, err := resumeRedact(ctx, env, st, p, r)
		if started || err != nil {
			return err
		}
	}
	if bool(u.Deactivated) && len(r.rooms) == 0 {
		// Deactivation leaves every room, so Synapse would find none.
		return rowErr("%s is deactivated: it is in no room any more, so name the rooms to redact in (rooms column)", p.UserID)
	}
	return addRedact(ctx, env, st, p, r)
}

// addRedact adds the step that starts the redaction, journals its task id
// as soon as the server returns it, and polls it to its end.
func addRedact(ctx context.Context, env Env, st *State, p *Plan, r *redaction) error {
	c, id := env.Client, p.UserID
	rooms, err := resolveRooms(ctx, c, r.rooms)
	if err != nil {
		return err
	}
	opt := synapse.RedactOptions{Rooms: rooms, Reason: r.reason, Limit: r.limit}
	p.add("events", FieldChange{Field: "events", Old: "as sent", New: r.text()}, func(ctx context.Context) (int, error) {
		taskID, err := c.RedactUser(ctx, id, opt)
		var se *synapse.Error
		if errors.As(err, &se) && se.Status == 400 && strings.Contains(se.Message, "already in progress") {
			// Synapse names no task to poll: an attempt whose answer was
			// lost started it, or another run did.
			return 0, rowErr("a redaction of %s's events is already running (its id unknown here): run the same command again once it ends", id)
		}
		return startedStep(ctx, env, st, taskID, err, pollRedact)
	})
	return nil
}

// resumeRedact handles a row whose redaction an earlier attempt started:
// a running task gets a step that polls it, a complete one needs nothing
// more; a failed or forgotten one, or one that left events unredacted, is
// dropped so that the row starts another (which skips the events already
// redacted). started says no second task may start.
func resumeRedact(ctx context.Context, env Env, st *State, p *Plan, r *redaction) (started bool, err error) {
	t, err := env.Client.RedactStatus(ctx, st.TaskID)
	switch {
	case synapse.IsNotFound(err):
		st.TaskID = "" // Synapse forgot it
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the status of redaction %s: %w", st.TaskID, err)
	case t.Status == synapse.TaskComplete && len(t.FailedRedactions) == 0:
		p.note("events redacted by task %s", st.TaskID)
		return true, nil
	case synapse.TaskRunning(t.Status):
		pollStep(env, st, p, st.TaskID, false, pollRedact, "events", FieldChange{Field: "events", Old: "being redacted by task " + st.TaskID, New: r.text()})
		return true, nil
	}
	st.TaskID = "" // failed, or left some events: start another
	return false, nil
}

// redactFailures fails the row when a complete task could not redact some
// events: Synapse ends the task complete all the same.
func redactFailures(id string, t *synapse.RedactTask) error {
	if len(t.FailedRedactions) == 0 {
		return nil
	}
	ev := slices.Sorted(maps.Keys(t.FailedRedactions))
	return rowErr("redaction %s left %d %s unredacted (%s: %s); the row run again starts a redaction that retries them",
		id, len(ev), pluralWord(int64(len(ev)), "event", "events"), ev[0], t.FailedRedactions[ev[0]])
}

// pollRedact polls a redaction to its end. Synapse ends it complete even
// when some events could not be redacted: those fail the row.
func pollRedact(ctx context.Context, env Env, id string) error {
	var last *synapse.RedactTask
	err := pollTask(ctx, env, "redaction "+id, func(ctx context.Context) (string, string, error) {
		t, err := env.Client.RedactStatus(ctx, id)
		if err != nil {
			return "", "", err
		}
		last = t
		return t.Status, t.Error, nil
	})
	if err != nil {
		return err
	}
	return redactFailures(id, last)
}

// resolveRooms turns aliases into room ids; each room must be known here.
func resolveRooms(ctx context.Context, c *synapse.Client, rooms []string) ([]string, error) {
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		id := r
		if strings.HasPrefix(r, "#") {
			var err error
			id, err = c.ResolveAlias(ctx, r)
			if synapse.IsNotFound(err) {
				return nil, rowErr("room alias %s does not exist", r)
			}
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", r, err)
			}
		}
		if _, err := knownRoom(ctx, c, id); err != nil {
			return nil, err
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}
