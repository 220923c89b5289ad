package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// resolveRoom returns the row's room id, resolving an alias.
func (j *Job) resolveRoom(ctx context.Context, c *synapse.Client) (string, error) {
	if !strings.HasPrefix(j.RoomID, "#") {
		return j.RoomID, nil
	}
	id, err := c.ResolveAlias(ctx, j.RoomID)
	if synapse.IsNotFound(err) {
		if j.Action == DeleteRoom {
			return "", rowErr("room alias %s does not exist (a deleted room loses its aliases: name rooms by id to make delete-room rows repeatable)", j.RoomID)
		}
		return "", rowErr("room alias %s does not exist", j.RoomID)
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", j.RoomID, err)
	}
	return id, nil
}

// room reads a room's details; nil when the server does not know it.
func room(ctx context.Context, c *synapse.Client, id string) (*synapse.RoomInfo, error) {
	r, err := c.GetRoom(ctx, id)
	if synapse.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read room %s: %w", id, err)
	}
	return r, nil
}

// knownRoom is room for actions that need the room to exist here.
func knownRoom(ctx context.Context, c *synapse.Client, id string) (*synapse.RoomInfo, error) {
	r, err := room(ctx, c, id)
	if err == nil && r == nil {
		return nil, rowErr("room %s is not known to this server", id)
	}
	return r, err
}

// roomText names a room for people: its name (or alias) and members.
func roomText(r *synapse.RoomInfo) string {
	if r == nil {
		return "not known to this server"
	}
	name := "(no name)"
	switch {
	case r.Name != nil && *r.Name != "":
		name = strconv.Quote(*r.Name)
	case r.CanonicalAlias != nil && *r.CanonicalAlias != "":
		name = *r.CanonicalAlias
	}
	return fmt.Sprintf("%s (%d %s)", name, r.JoinedMembers, pluralWord(r.JoinedMembers, "member", "members"))
}

func pluralWord(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// pollStep plans a step that polls a task already started with poll;
// adopt journals its id first (a task this row did not start, or did not
// journal).
func pollStep(env Env, st *State, p *Plan, taskID string, adopt bool, poll func(context.Context, Env, string) error, field string, c FieldChange) {
	p.Changes = append(p.Changes, c)
	p.steps = append(p.steps, step{fields: []string{field}, do: func(ctx context.Context) (int, error) {
		if adopt {
			if err := startedTask(env, st, taskID); err != nil {
				return 0, err
			}
		}
		return 200, poll(ctx, env, taskID)
	}})
}

// startedTask journals a task's id before anything else happens to the
// row, so a run killed from here on polls it on resume.
func startedTask(env Env, st *State, id string) error {
	if id == "" {
		return fmt.Errorf("the server started a task but sent no id")
	}
	st.TaskID = id
	if env.Task == nil {
		return nil
	}
	if err := env.Task(id); err != nil {
		return fmt.Errorf("journal task %s: %w", id, err)
	}
	return nil
}

// Polling starts quick (most tasks end within a second) and slows down to
// one request every pollMax.
const (
	pollFirst = 200 * time.Millisecond
	pollMax   = 5 * time.Second
)

// poll asks status until it says the task is over or the task timeout
// passes. status returns whether the task is over, and its error if it
// failed. The status requests skip the rate limiter (other rows keep their
// budget), and the waits between them pace it.
func poll(ctx context.Context, env Env, what string, status func(context.Context) (over bool, state string, err error)) error {
	if env.Polled != nil {
		start := time.Now()
		defer func() { env.Polled(time.Since(start)) }()
	}
	limit := cmp.Or(env.TaskTimeout, 30*time.Minute)
	deadline := time.Now().Add(limit)
	wait := pollFirst
	for {
		over, state, err := status(ctx)
		if err != nil || over {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return rowErr("%s is still %s after --task-timeout %s: run the same command again to go on polling it (no second task is started)", what, state, limit)
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*3/2, pollMax)
	}
}

// pollTask polls a task of the server's task scheduler: read returns its
// status and, when it failed, its error.
func pollTask(ctx context.Context, env Env, what string, read func(context.Context) (status, taskErr string, err error)) error {
	return poll(ctx, env, what, func(ctx context.Context) (bool, string, error) {
		status, terr, err := read(ctx)
		if err != nil {
			return false, "", fmt.Errorf("poll %s: %w", what, err)
		}
		switch {
		case status == synapse.TaskComplete:
			return true, status, nil
		case synapse.TaskRunning(status):
			return false, status, nil
		}
		return true, status, rowErr("%s %s: %s", what, status, cmp.Or(terr, "no reason given"))
	})
}

// startedStep is the end of a step that started a server task: the task's
// id is journaled, then the task polled to its end.
func startedStep(ctx context.Context, env Env, st *State, taskID string, err error, poll func(context.Context, Env, string) error) (int, error) {
	if err != nil {
		return 0, err
	}
	if err := startedTask(env, st, taskID); err != nil {
		return 0, err
	}
	return 200, poll(ctx, env, taskID)
}

func pollDelete(ctx context.Context, env Env, id string) error {
	return pollTask(ctx, env, "room deletion "+id, func(ctx context.Context) (string, string, error) {
		t, err := env.Client.DeleteStatus(ctx, id)
		if err != nil {
			return "", "", err
		}
		return t.Status, t.Error, nil
	})
}

func pollPurge(ctx context.Context, env Env, id string) error {
	// The purge status folds scheduled into active.
	return pollTask(ctx, env, "history purge "+id, func(ctx context.Context) (string, string, error) {
		return env.Client.PurgeStatus(ctx, id)
	})
}

// usable fails the row when a user the row acts for does not exist or is
// deactivated.
func usable(ctx context.Context, c *synapse.Client, id string) error {
	u, err := c.GetUser(ctx, id)
	if synapse.IsNotFound(err) {
		return rowErr("%s does not exist", id)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", id, err)
	}
	if bool(u.Deactivated) {
		return rowErr("%s is deactivated", id)
	}
	return nil
}

// powerLevels is the part of m.room.power_levels make_room_admin reads.
// Levels are numbers, or in old rooms strings of digits.
type powerLevels struct {
	Users        map[string]json.RawMessage `json:"users"`
	UsersDefault json.RawMessage            `json:"users_default"`
}

func level(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
