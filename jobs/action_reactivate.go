package jobs

import (
	"context"

	"github.com/synbatch/synbatch/synapse"
)

// Reactivate reactivates a deactivated account, with the row's password.
const Reactivate Action = "reactivate"

var reactivateAction = &Spec{Name: Reactivate, Kind: UserRow, Columns: []string{"password"},
	generates: true, setsPassword: true, parse: parsePasswordOnly, plan: withUser(true, planReactivate)}

// parsePasswordOnly reads the password column; the password is kept in Job.
func parsePasswordOnly(p *parser, j *Job) any {
	p.password(j)
	return nil
}

func planReactivate(_ context.Context, j *Job, env Env, st *State, p *Plan, u *synapse.User) error {
	if !bool(u.Deactivated) {
		return nil
	}
	id := p.UserID
	p.Changes = append(p.Changes, FieldChange{Field: "account", Old: "deactivated", New: "active"})
	// Still deactivated, so no earlier write of this row landed (Synapse
	// sets the password and reactivates in one request), and a deactivated
	// account has no session a second password write could log out: the
	// password goes with the reactivation even when an earlier answer was
	// lost. Sent without it, the account came back active without the
	// row's password, and every later run saw nothing left to do.
	if st != nil && j.HasPassword() {
		st.PasswordUnsure = false
	}
	withPassword := j.HasPassword()
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
		_, err := env.Client.PutUser(ctx, id, body)
		return 200, err
	}})
	return nil
}
