package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/synbatch/synbatch/mas"
)

// planRegTokenChangesMAS brings a token MAS has to the row: its usage
// limit and expiry, and, when the row's revoked column says so, revoked or
// back in use. A token brought back is unrevoked before it is edited, and
// one to revoke is edited before it is revoked, so MAS edits a revoked
// token only when the row keeps it revoked. A token already as the row wants
// it plans no step (unchanged).
func planRegTokenChangesMAS(m *mas.Client, t *regToken, cur *mas.RegToken, exp *time.Time, p *Plan) {
	was := cur.RevokedAt != nil
	setRevoked := func(want bool) {
		p.add("revoked", FieldChange{Field: "revoked", Old: fmt.Sprint(was), New: fmt.Sprint(want)}, func(ctx context.Context) (int, error) {
			return 200, m.SetRegTokenRevoked(ctx, cur.ID, want)
		})
	}
	if t.revoked != nil && !*t.revoked && was {
		setRevoked(false)
	}
	var curExp *int64
	if cur.ExpiresAt != nil {
		ms := cur.ExpiresAt.UnixMilli()
		curExp = &ms
	}
	if !sameInt(cur.UsageLimit, t.usesAllowed) || !sameInt(curExp, t.expiryTime) {
		old := (&regToken{usesAllowed: cur.UsageLimit, expiryTime: curExp}).text()
		p.add("token", FieldChange{Field: "token", Old: old, New: t.text()}, func(ctx context.Context) (int, error) {
			return 200, m.EditRegToken(ctx, cur.ID, t.usesAllowed, exp)
		})
	}
	if t.revoked != nil && *t.revoked && !was {
		setRevoked(true)
	}
}

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
			if cur.RevokedAt != nil && t.revoked == nil {
				return rowErr("registration token %s is revoked in MAS (revoked=false in the row brings it back)", t.subject())
			}
			planRegTokenChangesMAS(m, t, cur, exp, p)
			return nil
		}
		if t.revoked != nil && *t.revoked {
			return rowErr("registration token %s is not in MAS: there is nothing to revoke", t.subject())
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
