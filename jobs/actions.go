package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synbatch/synbatch/synapse"
)

// planAction plans the actions other than create, update and upsert. Each
// reads the state it would change first, so a row already satisfied sends
// nothing and a repeated row leaves the server as one run would.
func (j *Job) planAction(ctx context.Context, env Env, st *State, p *Plan) error {
	c := env.Client
	u, err := c.GetUser(ctx, p.UserID)
	if synapse.IsNotFound(err) {
		return rowErr("%s does not exist", p.UserID)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", p.UserID, err)
	}
	id := p.UserID
	if bool(u.Deactivated) && j.Action != Deactivate && j.Action != Reactivate {
		return rowErr("%s is deactivated", id)
	}
	switch j.Action {
	case ResetPassword:
		// Synapse cannot say whether a password is already the one asked
		// for; a resumed row whose write may have landed is not sent again.
		if st.PasswordUnsure || st.PasswordSet {
			return nil
		}
		logout := j.LogoutDevices == nil || *j.LogoutDevices
		desc := "set"
		if !logout {
			desc = "set (devices stay logged in)"
		}
		p.Changes = append(p.Changes, FieldChange{Field: "password", New: desc})
		p.steps = append(p.steps, step{fields: []string{"password"}, password: true, do: func(ctx context.Context) (int, error) {
			pw, err := j.passwordFor(env, st, id)
			if err != nil {
				return 0, err
			}
			err = c.ResetPassword(ctx, id, pw, logout)
			if synapse.IsUnrecognized(err) {
				// Synapse does not register the endpoint when Matrix
				// Authentication Service (MAS) handles logins.
				return 0, rowErr("the server does not offer reset_password: with Matrix Authentication Service (MAS), passwords are managed in MAS, not through Synapse's Admin API")
			}
			return 200, err
		}})

	case SetExternalIDs:
		ids := j.externalIDs(u.ExternalIDs)
		if !sameIDs(ids, u.ExternalIDs) {
			if err := j.guardExternalIDs(ctx, c, id, ids, u.ExternalIDs); err != nil {
				return err
			}
			j.putStep(env, p, "external_ids", ids, idsText(u.ExternalIDs), idsText(ids))
		}

	case RemoveExternalIDs:
		keep := slices.DeleteFunc(slices.Clone(u.ExternalIDs), func(x synapse.ExternalID) bool { return slices.Contains(j.ExternalIDs, x) })
		if len(keep) != len(u.ExternalIDs) {
			if keep == nil {
				keep = []synapse.ExternalID{}
			}
			j.putStep(env, p, "external_ids", keep, idsText(u.ExternalIDs), idsText(keep))
		}

	case DeleteDevices:
		devs, err := c.Devices(ctx, id)
		if err != nil {
			return fmt.Errorf("read devices of %s: %w", id, err)
		}
		var del []string
		cutoff := time.Now().Add(-time.Duration(env.InactiveDays) * 24 * time.Hour).UnixMilli()
		for _, d := range devs {
			if !j.AllDevices && !slices.Contains(j.Devices, d.DeviceID) {
				continue
			}
			// A device never seen (no last_seen_ts: it has made no request
			// since it was created, perhaps a login seconds ago) is kept.
			if env.InactiveDays > 0 && (d.LastSeenTS == 0 || d.LastSeenTS >= cutoff) {
				continue
			}
			del = append(del, d.DeviceID)
		}
		if len(del) > 0 {
			p.Changes = append(p.Changes, FieldChange{Field: "devices", Old: strings.Join(del, ";"), New: "deleted"})
			p.steps = append(p.steps, step{fields: []string{"devices"}, do: func(ctx context.Context) (int, error) {
				return 200, c.DeleteDevices(ctx, id, del)
			}})
		}

	case Deactivate:
		if bool(u.Deactivated) && (!j.Erase || bool(u.Erased)) {
			return nil
		}
		what := "deactivated"
		if j.Erase {
			what = "deactivated and erased"
		}
		p.Changes = append(p.Changes, FieldChange{Field: "account", Old: accountState(u), New: what})
		p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
			return 200, c.Deactivate(ctx, id, j.Erase)
		}})

	case Reactivate:
		if !bool(u.Deactivated) {
			return nil
		}
		p.Changes = append(p.Changes, FieldChange{Field: "account", Old: "deactivated", New: "active"})
		withPassword := j.HasPassword() && !st.PasswordUnsure
		if withPassword {
			p.Changes = append(p.Changes, FieldChange{Field: "password", New: "set"})
		}
		p.steps = append(p.steps, step{fields: []string{"account"}, password: withPassword, do: func(ctx context.Context) (int, error) {
			body := map[string]any{"deactivated": false}
			if withPassword {
				pw, err := j.passwordFor(env, st, id)
				if err != nil {
					return 0, err
				}
				body["password"] = pw
			}
			_, err := c.PutUser(ctx, id, body)
			return 200, err
		}})

	case JoinRooms:
		joined, err := c.JoinedRooms(ctx, id)
		if err != nil {
			return fmt.Errorf("read rooms of %s: %w", id, err)
		}
		return j.planJoinsResolved(ctx, env, p, joined)

	case ShadowBan, UnshadowBan:
		want := j.Action == ShadowBan
		if bool(u.ShadowBan) != want {
			p.Changes = append(p.Changes, FieldChange{Field: "shadow_banned", Old: fmt.Sprint(bool(u.ShadowBan)), New: fmt.Sprint(want)})
			p.steps = append(p.steps, step{fields: []string{"shadow_banned"}, do: func(ctx context.Context) (int, error) {
				return 200, c.SetShadowBan(ctx, id, want)
			}})
		}

	case Lock, Unlock:
		want := j.Action == Lock
		if bool(u.Locked) != want {
			j.putStep(env, p, "locked", want, fmt.Sprint(bool(u.Locked)), fmt.Sprint(want))
		}

	case SetRatelimit, DeleteRatelimit:
		cur, err := c.GetRatelimit(ctx, id)
		if err != nil {
			return fmt.Errorf("read rate limit of %s: %w", id, err)
		}
		old := ratelimitText(cur)
		if j.Action == DeleteRatelimit {
			if cur.MessagesPerSecond != nil || cur.BurstCount != nil {
				p.Changes = append(p.Changes, FieldChange{Field: "ratelimit", Old: old, New: "server default"})
				p.steps = append(p.steps, step{fields: []string{"ratelimit"}, do: func(ctx context.Context) (int, error) {
					return 200, c.DeleteRatelimit(ctx, id)
				}})
			}
			return nil
		}
		// An empty cell keeps the current value (0 when none is set).
		mps, burst := valueOr(j.MessagesPerSecond, cur.MessagesPerSecond), valueOr(j.BurstCount, cur.BurstCount)
		if cur.MessagesPerSecond == nil || *cur.MessagesPerSecond != mps || cur.BurstCount == nil || *cur.BurstCount != burst {
			p.Changes = append(p.Changes, FieldChange{Field: "ratelimit", Old: old, New: ratelimitText(synapse.Ratelimit{MessagesPerSecond: &mps, BurstCount: &burst})})
			p.steps = append(p.steps, step{fields: []string{"ratelimit"}, do: func(ctx context.Context) (int, error) {
				return 200, c.SetRatelimit(ctx, id, mps, burst)
			}})
		}
	}
	return nil
}

// putStep plans a PUT /v2/users of one field.
func (j *Job) putStep(env Env, p *Plan, field string, v any, old, new string) {
	id := p.UserID
	p.add(field, FieldChange{Field: field, Old: old, New: new}, func(ctx context.Context) (int, error) {
		_, err := env.Client.PutUser(ctx, id, map[string]any{field: v})
		return 200, err
	})
}

// planJoinsResolved plans joins to the rooms the user is not in yet
// (joined is nil for a new user). Every room must exist here first, so a
// typo never leaves a user created but in none of their rooms.
func (j *Job) planJoinsResolved(ctx context.Context, env Env, p *Plan, joined []string) error {
	for _, r := range j.Rooms {
		roomID := r
		if strings.HasPrefix(r, "#") {
			id, err := env.Client.ResolveAlias(ctx, r)
			if synapse.IsNotFound(err) {
				return rowErr("room alias %s does not exist", r)
			}
			if err != nil {
				return fmt.Errorf("resolve %s: %w", r, err)
			}
			roomID = id
		} else if err := env.Client.RoomExists(ctx, r); synapse.IsNotFound(err) {
			return rowErr("room %s is not known to this server", r)
		} else if err != nil {
			return fmt.Errorf("look up room %s: %w", r, err)
		}
		if !slices.Contains(joined, roomID) {
			j.joinStep(env, p, r)
		}
	}
	return nil
}

func (j *Job) joinStep(env Env, p *Plan, room string) {
	id := p.UserID
	p.add("rooms", FieldChange{Field: "rooms", New: "join " + room}, func(ctx context.Context) (int, error) {
		return 200, env.Client.Join(ctx, room, id)
	})
}

func accountState(u *synapse.User) string {
	switch {
	case bool(u.Erased):
		return "erased"
	case bool(u.Deactivated):
		return "deactivated"
	}
	return "active"
}

func ratelimitText(r synapse.Ratelimit) string {
	if r.MessagesPerSecond == nil && r.BurstCount == nil {
		return "server default"
	}
	var mps, burst int64
	if r.MessagesPerSecond != nil {
		mps = *r.MessagesPerSecond
	}
	if r.BurstCount != nil {
		burst = *r.BurstCount
	}
	return fmt.Sprintf("%d/s burst %d", mps, burst)
}

func valueOr(v, cur *int64) int64 {
	switch {
	case v != nil:
		return *v
	case cur != nil:
		return *cur
	}
	return 0
}
