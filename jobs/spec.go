package jobs

import (
	"context"
	"fmt"
	"slices"

	"github.com/synbatch/synbatch/synapse"
)

// RowKind says what the rows of an action are about.
type RowKind string

// Kinds of row.
const (
	UserRow  RowKind = "user"  // user_id (or the --match-by column) names the user it changes
	RoomRow  RowKind = "room"  // room_id names the room; user_id, when read, the users it acts for
	MediaRow RowKind = "media" // user_id names the user whose uploads it acts on
	TokenRow RowKind = "token" // no user: token names what it makes (or none: generated)
)

// Spec is everything one action is: its name, the columns it reads, what
// its rows are about, whether it takes something from users, how it reads
// its cells and how it plans against the server. Each action is a Spec in
// a file of its own, listed once in registry; the parser, the planner, the
// confirmation prompt and the docs all read it from there.
type Spec struct {
	Name Action
	Kind RowKind
	// Columns are the columns the action reads besides the ones every row
	// may have. A value in any other column is an error, so a row never
	// silently ignores what an admin wrote.
	Columns []string
	// Destructive actions take something from users: apply asks before the
	// first such write, and their begin records are synced.
	Destructive bool

	// creates: the action may create the account, so its rows name it by
	// user_id (never by --match-by).
	creates bool
	// generates: --generate-passwords gives the row a password when it has none.
	generates bool
	// setsPassword: a password on the row is written to an existing account.
	setsPassword bool
	// closes: the action closes an account (deactivate, lock, suspend), so
	// a roster's row for a leaver may carry the person's other columns
	// (name, email, …): they are ignored, not refused, and validation says
	// so once per column. It is also what --sync may do to an account the
	// roster does not name.
	closes bool

	// parse reads the action's own cells (the common ones are read already)
	// and returns its payload, kept in Job; nil when it has none.
	parse func(p *parser, j *Job) any
	// plan reads what the server holds and adds the writes the row needs.
	plan planFunc
}

// planFunc works out one row's writes into p. It sends only GET requests.
type planFunc func(ctx context.Context, j *Job, env Env, st *State, p *Plan) error

// lookup finds an action's spec; nil for an unknown one.
func lookup(a Action) *Spec { return specByName[a] }

// Specs lists every action's spec in the order of the docs.
func Specs() []*Spec { return slices.Clone(registry) }

// Actions lists every action in the order of the docs.
func Actions() []Action {
	out := make([]Action, len(registry))
	for i, s := range registry {
		out[i] = s.Name
	}
	return out
}

// Room reports whether rows of the action are about a room, not a user.
func (a Action) Room() bool {
	s := lookup(a)
	return s != nil && s.Kind == RoomRow
}

// Destructive reports whether an action takes something from users: apply
// asks before the first such write.
func (a Action) Destructive() bool {
	s := lookup(a)
	return s != nil && s.Destructive
}

// index maps names to specs, refusing a name registered twice.
func index(specs []*Spec) map[Action]*Spec {
	m := make(map[Action]*Spec, len(specs))
	for _, s := range specs {
		if m[s.Name] != nil {
			panic(fmt.Sprintf("jobs: action %s registered twice", s.Name))
		}
		m[s.Name] = s
	}
	return m
}

// withUser plans a user action that needs its account: a missing one fails
// the row, and so does a deactivated one unless deactivatedOK.
func withUser(deactivatedOK bool, plan func(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *synapse.User) error) planFunc {
	return func(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
		u, err := env.Client.GetUser(ctx, p.UserID)
		if synapse.IsNotFound(err) {
			return rowErr("%s does not exist", p.UserID)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.UserID, err)
		}
		if bool(u.Deactivated) && !deactivatedOK {
			return rowErr("%s is deactivated", p.UserID)
		}
		return plan(ctx, j, env, st, p, u)
	}
}

// inRoom plans a room action: the row's room (an alias resolved) becomes
// the plan's subject first.
func inRoom(plan planFunc) planFunc {
	return func(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
		id, err := j.resolveRoom(ctx, env.Client)
		if err != nil {
			return err
		}
		p.UserID = id
		return plan(ctx, j, env, st, p)
	}
}
