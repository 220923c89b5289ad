package jobs

import (
	"context"
	"fmt"
	"strings"
)

// resolveMAS finds the row's user on a MAS server, where Synapse keeps no
// emails or external ids: the MAS user that holds the address, or that the
// provider's subject is linked to, by its username on this homeserver.
func (j *Job) resolveMAS(ctx context.Context, env Env) (string, error) {
	m := env.MAS
	var owner, what string
	switch {
	case env.MatchBy == "email":
		what = "email " + j.Match
		e, err := m.EmailByAddress(ctx, j.Match)
		if err != nil {
			return "", fmt.Errorf("find the user of %s in MAS: %w", what, err)
		}
		if e != nil {
			owner = e.UserID
		}
	case strings.HasPrefix(env.MatchBy, "external_id:"):
		name := strings.TrimPrefix(env.MatchBy, "external_id:")
		what = "external id " + name + ":" + j.Match
		ps, err := m.Providers(ctx)
		if err != nil {
			return "", fmt.Errorf("read MAS's upstream providers: %w", err)
		}
		pid, err := resolveMASProvider(ps, name)
		if err != nil {
			return "", err
		}
		l, err := m.LinkBySubject(ctx, pid, j.Match)
		if err != nil {
			return "", fmt.Errorf("find the user of %s in MAS: %w", what, err)
		}
		if l != nil {
			owner = l.Owner()
		}
	default:
		return "", rowErr("the row names its user by %q, but --match-by is %q", j.Match, env.MatchBy)
	}
	if owner == "" {
		return "", rowErr("no MAS user has %s", what)
	}
	u, err := m.UserByID(ctx, owner)
	if err != nil {
		return "", fmt.Errorf("read MAS user %s (%s): %w", owner, what, err)
	}
	if u == nil {
		return "", rowErr("no MAS user has %s (its owner %s is gone)", what, owner)
	}
	if env.ServerName == "" {
		return "", fmt.Errorf("match %s: the homeserver's name is not known", what)
	}
	return "@" + u.Username + ":" + env.ServerName, nil
}
