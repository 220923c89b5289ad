package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// planRoom plans a room row. Like the user actions, each reads what the
// server holds first and writes only what differs. delete-room and
// purge-history start a server task: its id is journaled as soon as the
// server returns it, and a row that has one polls it, never starting a
// second.
func (j *Job) planRoom(ctx context.Context, env Env, st *State, p *Plan) error {
	if j.Action == DeleteRoom && st.TaskID != "" {
		done, err := j.resumeDelete(ctx, env, st, p)
		if done || err != nil {
			return err
		}
	}
	id, err := j.resolveRoom(ctx, env.Client)
	if err != nil {
		return err
	}
	p.UserID = id
	switch j.Action {
	case Block, Unblock:
		return j.planBlock(ctx, env, p)
	case DeleteRoom:
		return j.planDeleteRoom(ctx, env, st, p)
	case MakeRoomAdmin:
		return j.planMakeRoomAdmin(ctx, env, p)
	case Join:
		return j.planJoin(ctx, env, p)
	case PurgeHistory:
		return j.planPurgeHistory(ctx, env, st, p)
	}
	return fmt.Errorf("internal error: %s is not a room action", j.Action)
}

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

func (j *Job) planBlock(ctx context.Context, env Env, p *Plan) error {
	c, id := env.Client, p.UserID
	blocked, by, err := c.RoomBlock(ctx, id)
	if err != nil {
		return fmt.Errorf("read block status of %s: %w", id, err)
	}
	want := j.Action == Block
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

// deleteOptions is the body of the row's deletion.
func (j *Job) deleteOptions() synapse.DeleteRoomOptions {
	o := synapse.DeleteRoomOptions{NewRoomUserID: j.NewRoomUserID, Block: j.BlockRoom, Purge: j.Purge, ForcePurge: j.ForcePurge}
	if j.RoomName != nil {
		o.RoomName = *j.RoomName
	}
	if j.Message != nil {
		o.Message = *j.Message
	}
	return o
}

func (j *Job) deleteText() string {
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
func (j *Job) resumeDelete(ctx context.Context, env Env, st *State, p *Plan) (done bool, err error) {
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
		j.pollStep(env, st, p, t.DeleteID, false, "room", FieldChange{Field: "room", Old: "being deleted by task " + t.DeleteID, New: j.deleteText()})
		return true, nil
	}
	st.TaskID = "" // failed or cancelled: plan again
	return false, nil
}

func (j *Job) planDeleteRoom(ctx context.Context, env Env, st *State, p *Plan) error {
	c, id := env.Client, p.UserID
	r, err := room(ctx, c, id)
	if err != nil {
		return err
	}
	tasks, err := c.RoomDeleteTasks(ctx, id)
	if err != nil {
		return fmt.Errorf("read deletion tasks of %s: %w", id, err)
	}
	// A deletion already running (another run's, or one whose id a killed
	// run never journaled) is polled, not doubled: Synapse starts a second
	// task while the first is only scheduled.
	for _, t := range tasks {
		if synapse.TaskRunning(t.Status) {
			j.pollStep(env, st, p, t.DeleteID, true, "room", FieldChange{Field: "room", Old: roomText(r) + ", being deleted by task " + t.DeleteID, New: j.deleteText()})
			return nil
		}
	}
	wantBlock := j.BlockRoom != nil && *j.BlockRoom
	blocked := false
	if wantBlock {
		if blocked, _, err = c.RoomBlock(ctx, id); err != nil {
			return fmt.Errorf("read block status of %s: %w", id, err)
		}
	}
	purge := j.Purge == nil || *j.Purge
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
	opt := j.deleteOptions()
	p.steps = append(p.steps, step{fields: []string{"room"}, do: func(ctx context.Context) (int, error) {
		taskID, err := c.DeleteRoom(ctx, id, opt)
		var se *synapse.Error
		if errors.As(err, &se) && se.Status == 400 && strings.Contains(se.Message, "already in progress") {
			// Another deletion began since the plan: poll that one.
			return 200, j.adoptRunning(ctx, env, st, id)
		}
		if err != nil {
			return 0, err
		}
		if err := j.startedTask(env, st, taskID); err != nil {
			return 0, err
		}
		return 200, j.pollDelete(ctx, env, taskID)
	}})
	p.Changes = append(p.Changes, FieldChange{Field: "room", Old: roomText(r), New: j.deleteText()})
	return nil
}

// adoptRunning journals and polls the deletion task running for a room.
func (j *Job) adoptRunning(ctx context.Context, env Env, st *State, roomID string) error {
	tasks, err := env.Client.RoomDeleteTasks(ctx, roomID)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if synapse.TaskRunning(t.Status) {
			if err := j.startedTask(env, st, t.DeleteID); err != nil {
				return err
			}
			return j.pollDelete(ctx, env, t.DeleteID)
		}
	}
	return nil // finished meanwhile
}

// pollStep plans a step that polls a task already started; adopt journals
// its id first (a task this row did not start, or did not journal).
func (j *Job) pollStep(env Env, st *State, p *Plan, taskID string, adopt bool, field string, c FieldChange) {
	p.Changes = append(p.Changes, c)
	p.steps = append(p.steps, step{fields: []string{field}, do: func(ctx context.Context) (int, error) {
		if adopt {
			if err := j.startedTask(env, st, taskID); err != nil {
				return 0, err
			}
		}
		if j.Action == PurgeHistory {
			return 200, j.pollPurge(ctx, env, taskID)
		}
		return 200, j.pollDelete(ctx, env, taskID)
	}})
}

// startedTask journals a task's id before anything else happens to the
// row, so a run killed from here on polls it on resume.
func (j *Job) startedTask(env Env, st *State, id string) error {
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

func (j *Job) pollDelete(ctx context.Context, env Env, id string) error {
	what := "room deletion " + id
	return poll(ctx, env, what, func(ctx context.Context) (bool, string, error) {
		t, err := env.Client.DeleteStatus(ctx, id)
		if err != nil {
			return false, "", fmt.Errorf("poll %s: %w", what, err)
		}
		switch {
		case t.Status == synapse.TaskComplete:
			return true, t.Status, nil
		case synapse.TaskRunning(t.Status):
			return false, t.Status, nil
		}
		return true, t.Status, rowErr("%s %s: %s", what, t.Status, cmp.Or(t.Error, "no reason given"))
	})
}

func (j *Job) pollPurge(ctx context.Context, env Env, id string) error {
	what := "history purge " + id
	return poll(ctx, env, what, func(ctx context.Context) (bool, string, error) {
		status, terr, err := env.Client.PurgeStatus(ctx, id)
		if err != nil {
			return false, "", fmt.Errorf("poll %s: %w", what, err)
		}
		switch status {
		case synapse.TaskComplete:
			return true, status, nil
		case synapse.TaskFailed, synapse.TaskCancelled:
			return true, status, rowErr("%s %s: %s", what, status, cmp.Or(terr, "no reason given"))
		}
		return false, status, nil
	})
}

func (j *Job) planPurgeHistory(ctx context.Context, env Env, st *State, p *Plan) error {
	c, id := env.Client, p.UserID
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	before := time.UnixMilli(j.Before).UTC().Format(time.RFC3339)
	what := "history before " + before + " purged"
	if j.DeleteLocalEvents {
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
			j.pollStep(env, st, p, st.TaskID, false, "history", FieldChange{Field: "room", Old: roomText(r) + ", purge " + st.TaskID + " running", New: what})
			return nil
		}
	}
	// A purge leaves the timeline starting after the cut (only a room's
	// latest event is kept when it is older): with nothing older left,
	// there is nothing to purge.
	first, err := c.FirstEvents(ctx, id, 2)
	if err != nil {
		return fmt.Errorf("read the timeline of %s: %w", id, err)
	}
	if len(first) < 2 || first[0].OriginServerTS >= j.Before {
		p.Reason = "no history before " + before + " left in the timeline"
		return nil
	}
	p.Changes = append(p.Changes, FieldChange{Field: "room", Old: roomText(r), New: what})
	p.steps = append(p.steps, step{fields: []string{"history"}, do: func(ctx context.Context) (int, error) {
		taskID, err := c.PurgeHistory(ctx, id, j.Before, j.DeleteLocalEvents)
		if synapse.IsNotFound(err) {
			return 200, nil // "there is no event to be purged"
		}
		if err != nil {
			return 0, err
		}
		if err := j.startedTask(env, st, taskID); err != nil {
			return 0, err
		}
		return 200, j.pollPurge(ctx, env, taskID)
	}})
	return nil
}

func (j *Job) planJoin(ctx context.Context, env Env, p *Plan) error {
	c, id := env.Client, p.UserID
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	members, err := c.RoomMembers(ctx, id)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", id, err)
	}
	for _, u := range j.Members {
		if slices.Contains(members, u) {
			continue
		}
		if err := usable(ctx, c, u); err != nil {
			return err
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

// planMakeRoomAdmin works out what Synapse's make_room_admin would do: give
// the user the power level of the room's most powerful joined local user
// (100 if that is a creator of a room version where creators stand above
// power levels), and invite them unless they are in the room or it is
// public. It is unchanged when the user already has that much power and
// is joined or invited (or the room is public).
func (j *Job) planMakeRoomAdmin(ctx context.Context, env Env, p *Plan) error {
	c, id := env.Client, p.UserID
	user := j.Members[0]
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	if err := usable(ctx, c, user); err != nil {
		return err
	}
	state := func(typ string) ([]synapse.StateEvent, error) {
		evs, err := c.RoomState(ctx, id, typ)
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", typ, id, err)
		}
		return evs, nil
	}
	creates, err := state("m.room.create")
	if err != nil {
		return err
	}
	if len(creates) == 0 {
		return rowErr("room %s has no create event here (this server is not in the room)", id)
	}
	var create struct {
		RoomVersion        string   `json:"room_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	_ = json.Unmarshal(creates[0].Content, &create)
	pls, err := state("m.room.power_levels")
	if err != nil {
		return err
	}
	rules, err := state("m.room.join_rules")
	if err != nil {
		return err
	}
	members, err := c.RoomMembers(ctx, id)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", id, err)
	}
	_, server, _ := strings.Cut(user, ":")
	local := func(u string) bool { _, s, _ := strings.Cut(u, ":"); return s == server }

	// Room versions with MSC4289 (12, and hydra's) give creators power above any level.
	creatorPower := create.RoomVersion == "12" || strings.HasPrefix(create.RoomVersion, "org.matrix.hydra")
	creators := append([]string{creates[0].Sender}, create.AdditionalCreators...)
	var pl powerLevels
	if len(pls) > 0 {
		_ = json.Unmarshal(pls[0].Content, &pl)
	}
	current, has := level(pl.Users[user])
	if !has {
		current, _ = level(pl.UsersDefault)
	}
	powerful := creatorPower && slices.Contains(creators, user)
	target := int64(100)
	if len(pls) == 0 {
		powerful = powerful || user == creates[0].Sender
		if !local(creates[0].Sender) {
			return rowErr("no local admin user in %s: Synapse can make nobody admin there", id)
		}
	} else {
		// The joined local user with the most power, as Synapse picks it:
		// creators (in creator-power versions) first, then by level.
		var candidates []string
		for u := range pl.Users {
			if local(u) {
				candidates = append(candidates, u)
			}
		}
		slices.SortFunc(candidates, func(a, b string) int {
			la, _ := level(pl.Users[a])
			lb, _ := level(pl.Users[b])
			return cmp.Or(cmp.Compare(lb, la), strings.Compare(a, b))
		})
		if creatorPower {
			var cs []string
			for _, u := range creators {
				if local(u) {
					cs = append(cs, u)
				}
			}
			slices.Reverse(cs)
			candidates = append(cs, candidates...)
		}
		admin := ""
		for _, u := range candidates {
			if slices.Contains(members, u) {
				admin = u
				break
			}
		}
		if admin == "" {
			return rowErr("no local user with power is joined to %s: Synapse can make nobody admin there", id)
		}
		if l, ok := level(pl.Users[admin]); ok {
			target = l
		}
	}
	joined := slices.Contains(members, user)
	public := false
	if len(rules) > 0 {
		var jr struct {
			JoinRule string `json:"join_rule"`
		}
		_ = json.Unmarshal(rules[0].Content, &jr)
		public = jr.JoinRule == "public"
	}
	invited := false
	if !joined && !public {
		mem, err := state("m.room.member")
		if err != nil {
			return err
		}
		for _, e := range mem {
			var m struct {
				Membership string `json:"membership"`
			}
			if e.StateKey == user && json.Unmarshal(e.Content, &m) == nil {
				invited = m.Membership == "invite"
			}
		}
	}
	inRoom := joined || invited || public
	if (powerful || current >= target) && inRoom {
		p.Reason = fmt.Sprintf("%s already has power level %d", user, current)
		if powerful {
			p.Reason = user + " is a creator of the room"
		}
		return nil
	}
	what := fmt.Sprintf("%s made room admin (power level %d → %d)", user, current, target)
	if !inRoom {
		what += ", invited"
	}
	p.add("power_levels", FieldChange{Field: "room", Old: roomText(r), New: what}, func(ctx context.Context) (int, error) {
		return 200, c.MakeRoomAdmin(ctx, id, user)
	})
	return nil
}
