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
	where := "in every room the user has events in, left rooms included"
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

func planRedact(ctx context.Context, j *Job, env Env, st *State, p *Plan, _ *synapse.User) error {
	return planRedaction(ctx, env, st, p, j.payload.(*redaction))
}

// planRedaction plans a redaction that is never done twice: Synapse 1.160
// redacts again what it redacted before (its check for an earlier
// redaction looks among relations, where redactions never are), so the
// plan reads the user's events in every room it covers, leaves out the
// rooms where nothing is left to redact (all of them: the row is
// unchanged), and a redaction already running, whether this row started
// it or a lost answer hid it, is polled to its end before anything is
// counted or sent.
func planRedaction(ctx context.Context, env Env, st *State, p *Plan, r *redaction) error {
	running, adopt, err := runningRedaction(ctx, env, st, p.UserID)
	if err != nil {
		return err
	}
	if running != "" {
		p.Changes = append(p.Changes, FieldChange{Field: "events", Old: "being redacted by task " + running, New: r.text()})
		p.steps = append(p.steps, step{fields: []string{"events"}, do: func(ctx context.Context) (int, error) {
			if adopt {
				if err := startedTask(env, st, running); err != nil {
					return 0, err
				}
			}
			if err := pollRedactTask(ctx, env, running); err != nil {
				return 0, err
			}
			// What that task left (rooms it did not cover, events it
			// failed) is redacted now, counted again.
			return redactLeft(ctx, env, st, p.UserID, r, nil)
		}})
		return nil
	}
	rooms, err := redactRooms(ctx, env.Client, p.UserID, r)
	if err != nil {
		return err
	}
	return addRedact(env, st, p, r, rooms)
}

// addRedact adds the step that redacts what is left in rooms, or, when
// nothing is, notes that the row is done already.
func addRedact(env Env, st *State, p *Plan, r *redaction, rooms []redactRoom) error {
	events, pending, left := 0, 0, 0
	for _, rr := range rooms {
		events += rr.events
		pending += rr.pending
		if rr.pending > 0 {
			left++
		}
	}
	p.note("redaction covers %d %s: %s", len(rooms), pluralWord(int64(len(rooms)), "room", "rooms"), redactRoomList(rooms))
	if pending == 0 {
		p.note("all %d %s redacted already", events, pluralWord(int64(events), "event", "events"))
		return nil
	}
	p.RedactRooms += len(rooms)
	id := p.UserID
	p.add("events", FieldChange{Field: "events",
		Old: fmt.Sprintf("%d of %d unredacted in %d %s", pending, events, left, pluralWord(int64(left), "room", "rooms")),
		New: r.text()},
		func(ctx context.Context) (int, error) { return redactLeft(ctx, env, st, id, r, rooms) })
	return nil
}

func redactRoomList(rooms []redactRoom) string {
	s := make([]string, len(rooms))
	for i, rr := range rooms {
		s[i] = rr.String()
	}
	return strings.Join(s, ", ")
}

// redactLeft starts one redaction of the rooms where events are left (rooms
// counted again when nil), journals its task as soon as the server names
// it, and polls it to its end. A redaction Synapse says is already running
// (a lost answer started it, or another run) is read back from the task
// list and polled, and what it left is counted again, once.
func redactLeft(ctx context.Context, env Env, st *State, id string, r *redaction, rooms []redactRoom) (int, error) {
	for attempt := 0; ; attempt++ {
		if rooms == nil {
			var err error
			if rooms, err = redactRooms(ctx, env.Client, id, r); err != nil {
				return 0, err
			}
		}
		var pending []string
		for _, rr := range rooms {
			if rr.pending > 0 {
				pending = append(pending, rr.room)
			}
		}
		if len(pending) == 0 {
			return 200, nil
		}
		taskID, err := env.Client.RedactUser(ctx, id, synapse.RedactOptions{Rooms: pending, Reason: r.reason, Limit: r.limit})
		var se *synapse.Error
		if errors.As(err, &se) && se.Status == 400 && strings.Contains(se.Message, "already in progress") && attempt == 0 {
			other, _, err := runningRedaction(ctx, env, &State{}, id)
			if err != nil {
				return 0, err
			}
			if other == "" {
				return 0, rowErr("a redaction of %s's events is already running, but the server's task list names none: run the same command again once it ends", id)
			}
			if err := startedTask(env, st, other); err != nil {
				return 0, err
			}
			if err := pollRedactTask(ctx, env, other); err != nil {
				return 0, err
			}
			rooms = nil
			continue
		}
		return startedStep(ctx, env, st, taskID, err, pollRedact)
	}
}

// runningRedaction finds a redaction of the user that is still scheduled
// or running: the row's own journaled task, or one in the server's task
// list (adopt: its id is journaled before it is polled). A finished task
// of the row is forgotten: the events are counted again.
func runningRedaction(ctx context.Context, env Env, st *State, user string) (id string, adopt bool, err error) {
	if st.TaskID != "" {
		t, err := env.Client.RedactStatus(ctx, st.TaskID)
		switch {
		case synapse.IsNotFound(err):
		case err != nil:
			return "", false, fmt.Errorf("read the status of redaction %s: %w", st.TaskID, err)
		case synapse.TaskRunning(t.Status):
			return st.TaskID, false, nil
		}
		st.TaskID = ""
	}
	id, err = env.Client.RunningTask(ctx, synapse.TaskRedact, user)
	if err != nil {
		return "", false, fmt.Errorf("running redactions of %s: %w", user, err)
	}
	return id, id != "", nil
}

// pollRedactTask polls a task to its end without judging its failed
// redactions: the events are counted again after it.
func pollRedactTask(ctx context.Context, env Env, id string) error {
	return pollTask(ctx, env, "redaction "+id, func(ctx context.Context) (string, string, error) {
		t, err := env.Client.RedactStatus(ctx, id)
		if err != nil {
			return "", "", err
		}
		return t.Status, t.Error, nil
	})
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
