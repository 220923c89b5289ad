package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/synbatch/synbatch/mas"
)

// planRegTokenMAS is a registration-token row on a MAS server, where
// Synapse's registration tokens are gone and MAS keeps its own: the same
// row semantics (the row's token or one generated into --tokens-out, else
// --passwords-out, its
// uses_allowed as MAS's usage limit, its expiry_time as MAS's expiry). A
// generated token is in the 0600 file before its create is sent, and every
// attempt reads MAS for the file's value first, so a lost answer or a
// killed run never makes a second token.
func planRegTokenMAS(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	t, m := j.payload.(*regToken), env.MAS
	env = tokenEnv(env)
	p.UserID = t.subject()
	value := t.token
	if j.generate {
		var err error
		if value, _, err = j.knownPassword(env, st, secretLabel(j, env)); err != nil {
			return err
		}
	}
	var exp *time.Time
	if t.expiryTime != nil {
		e := time.UnixMilli(*t.expiryTime).UTC()
		exp = &e
	}
	if value != "" {
		cur, err := m.RegTokenByValue(ctx, value)
		if err != nil {
			return fmt.Errorf("read MAS's registration tokens: %w", err)
		}
		if cur != nil {
			if cur.RevokedAt != nil {
				return rowErr("registration token %s is revoked in MAS", t.subject())
			}
			curExp := (*int64)(nil)
			if cur.ExpiresAt != nil {
				ms := cur.ExpiresAt.UnixMilli()
				curExp = &ms
			}
			if sameInt(cur.UsageLimit, t.usesAllowed) && sameInt(curExp, t.expiryTime) {
				return nil
			}
			old := (&regToken{usesAllowed: cur.UsageLimit, expiryTime: curExp}).text()
			p.add("token", FieldChange{Field: "token", Old: old, New: t.text()}, func(ctx context.Context) (int, error) {
				return 200, m.EditRegToken(ctx, cur.ID, t.usesAllowed, exp)
			})
			return nil
		}
	}
	if exp != nil && exp.Before(time.Now()) {
		return rowErr("expiry_time %s is in the past: a token that has expired is of no use", exp.Format(time.RFC3339))
	}
	p.Kind = KindCreate
	p.add("token", FieldChange{Field: "token", Old: "", New: t.text()}, func(ctx context.Context) (int, error) {
		v := value
		if v == "" {
			var err error
			if v, err = j.passwordFor(env, st, secretLabel(j, env)); err != nil {
				return 0, err
			}
		}
		err := m.CreateRegToken(ctx, v, t.usesAllowed, exp)
		if mas.IsConflict(err) {
			// Ours, whose answer was lost: the value is the file's (or the
			// row's), so whoever made it made this row's token.
			return 201, nil
		}
		return 201, err
	})
	return nil
}
