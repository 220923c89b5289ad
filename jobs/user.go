package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// putStep plans a PUT /v2/users of one field.
func putStep(env Env, p *Plan, field string, v any, old, new string) {
	id := p.UserID
	p.add(field, FieldChange{Field: field, Old: old, New: new}, func(ctx context.Context) (int, error) {
		_, err := env.Client.PutUser(ctx, id, map[string]any{field: v})
		return 200, err
	})
}

// planJoins plans joins to the rooms the user is not in yet (joined is nil
// for a new user). Every room must exist here first, so a typo never leaves
// a user created but in none of their rooms.
func planJoins(ctx context.Context, env Env, p *Plan, rooms, joined []string) error {
	for _, r := range rooms {
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
		}
		if slices.Contains(joined, roomID) {
			continue
		}
		if err := joinable(ctx, env, r, roomID); err != nil {
			return err
		}
		joinStep(env, p, r)
	}
	return nil
}

func joinStep(env Env, p *Plan, room string) {
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
