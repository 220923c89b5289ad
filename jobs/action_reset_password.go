package jobs

import (
	"context"

	"github.com/synbatch/synbatch/synapse"
)

// ResetPassword sets the user's password through reset_password.
const ResetPassword Action = "reset-password"

var resetPasswordAction = &Spec{Name: ResetPassword, Kind: UserRow, Columns: []string{"password", "logout_devices"},
	Destructive: true, generates: true, setsPassword: true, parse: parseResetPassword, plan: withUser(false, planResetPassword)}

// resetPassword is a reset-password row's payload.
type resetPassword struct {
	logout *bool
}

func parseResetPassword(p *parser, j *Job) any {
	p.password(j)
	if !j.HasPassword() {
		p.bad("password", "reset-password needs a password (or generate, or --generate-passwords)")
	}
	return &resetPassword{logout: p.boolean("logout_devices")}
}

func planResetPassword(_ context.Context, j *Job, env Env, st *State, p *Plan, _ *synapse.User) error {
	// Synapse cannot say whether a password is already the one asked
	// for; a resumed row whose write may have landed is not sent again.
	if st.PasswordUnsure || st.PasswordSet {
		return nil
	}
	pl := j.payload.(*resetPassword)
	logout := pl.logout == nil || *pl.logout
	desc := "set"
	if !logout {
		desc = "set (devices stay logged in)"
	}
	c, id := env.Client, p.UserID
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
	return nil
}
