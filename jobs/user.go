package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/journal"
	"github.com/synbatch/synbatch/synapse"
)

// Env is what a job needs from the run.
type Env struct {
	Client   *synapse.Client
	OnExists OnExists
	// Begin journals that a write for the row is about to be sent. It must
	// return before the write goes out, so a killed run leaves a trace.
	Begin func() error
}

// State carries what earlier attempts at the same row learned.
type State struct {
	// Begun: an earlier attempt or an interrupted run sent (or was about to
	// send) a write for this row.
	Begun bool
	// PasswordUnsure: a write holding the password got no answer, so it may
	// have been applied. It is not sent again: a second password write logs
	// the user out a second time.
	PasswordUnsure bool
}

// Result is what became of a row. Changed lists the fields written.
type Result struct {
	Outcome journal.Outcome
	Changed []string
	Note    string
	Status  int
}

// RowError fails one row for a reason that trying again will not fix.
type RowError struct{ Msg string }

func (e *RowError) Error() string { return e.Msg }

func rowErr(format string, args ...any) error { return &RowError{Msg: fmt.Sprintf(format, args...)} }

// Change is the write a row needs: the PUT body and the fields it touches.
type Change struct {
	Create  bool
	Body    map[string]any
	Fields  []string
	Skip    string // non-empty: nothing to do, for this reason (journaled as skipped)
	Current *synapse.User
}

// Plan reads the account and works out the write that makes it match the
// row, after checking that no threepid or external id in it belongs to
// someone else. It sends no write.
func (j *Job) Plan(ctx context.Context, env Env, st *State) (*Change, error) {
	c := env.Client
	u, err := c.GetUser(ctx, j.UserID)
	if err != nil && !synapse.IsNotFound(err) {
		return nil, fmt.Errorf("read %s: %w", j.UserID, err)
	}
	if u == nil {
		return j.planCreate(ctx, c)
	}
	action := j.Action
	if action == Create {
		switch {
		case st.Begun:
			// This run or an interrupted one created it: finish the job.
		case env.OnExists == ExistsFail:
			return nil, rowErr("%s already exists (--on-exists fail)", j.UserID)
		case env.OnExists == ExistsUpdate:
		default:
			return &Change{Skip: "user exists (--on-exists skip)", Current: u}, nil
		}
	}
	if bool(u.Deactivated) {
		return nil, rowErr("%s is deactivated: reactivate it before changing it", j.UserID)
	}
	return j.planUpdate(ctx, c, u, action, st)
}

func (j *Job) planCreate(ctx context.Context, c *synapse.Client) (*Change, error) {
	if j.Action == Update {
		return nil, rowErr("%s does not exist (action update changes existing users only)", j.UserID)
	}
	ch := &Change{Create: true, Body: map[string]any{}}
	set := func(field string, v any) {
		ch.Body[field] = v
		ch.Fields = append(ch.Fields, field)
	}
	if j.password != "" {
		ch.Body["password"] = j.password
		ch.Fields = append(ch.Fields, "password")
	}
	if j.Displayname != nil && *j.Displayname != "" {
		set("displayname", *j.Displayname)
	}
	if j.AvatarURL != nil && *j.AvatarURL != "" {
		set("avatar_url", *j.AvatarURL)
	}
	if j.UserType != nil && *j.UserType != "" {
		set("user_type", *j.UserType)
	}
	if j.Admin != nil {
		set("admin", *j.Admin)
	}
	tp := j.threepids(nil)
	if len(tp) > 0 {
		if err := j.guardThreepids(ctx, c, tp, nil); err != nil {
			return nil, err
		}
		set("threepids", tp)
	}
	if len(j.ExternalIDs) > 0 {
		if err := j.guardExternalIDs(ctx, c, j.ExternalIDs, nil); err != nil {
			return nil, err
		}
		set("external_ids", j.ExternalIDs)
	}
	return ch, nil
}

func (j *Job) planUpdate(ctx context.Context, c *synapse.Client, u *synapse.User, action Action, st *State) (*Change, error) {
	ch := &Change{Body: map[string]any{}, Current: u}
	set := func(field string, v any) {
		ch.Body[field] = v
		ch.Fields = append(ch.Fields, field)
	}
	if j.Displayname != nil && *j.Displayname != deref(u.Displayname) {
		set("displayname", *j.Displayname)
	}
	if j.AvatarURL != nil && *j.AvatarURL != deref(u.AvatarURL) {
		set("avatar_url", *j.AvatarURL)
	}
	if j.UserType != nil && *j.UserType != deref(u.UserType) {
		if *j.UserType == "" {
			set("user_type", nil)
		} else {
			set("user_type", *j.UserType)
		}
	}
	if j.Admin != nil && *j.Admin != bool(u.Admin) {
		set("admin", *j.Admin)
	}
	if j.Emails != nil || j.Msisdns != nil {
		tp := j.threepids(u.Threepids)
		if !sameThreepids(tp, u.Threepids) {
			if err := j.guardThreepids(ctx, c, tp, u.Threepids); err != nil {
				return nil, err
			}
			set("threepids", tp)
		}
	}
	if j.HasIDs {
		ids := j.externalIDs(u.ExternalIDs)
		if !sameIDs(ids, u.ExternalIDs) {
			if err := j.guardExternalIDs(ctx, c, ids, u.ExternalIDs); err != nil {
				return nil, err
			}
			set("external_ids", ids)
		}
	}
	// On create and upsert the password is the initial one: an account that
	// exists keeps its password, so re-applying an onboarding sheet never
	// logs anyone out. An update row sets it, unless an earlier attempt's
	// answer was lost (then it may be set already; see State).
	if action == Update && j.password != "" && !st.PasswordUnsure {
		ch.Body["password"] = j.password
		ch.Fields = append(ch.Fields, "password")
		if j.LogoutDevices != nil {
			ch.Body["logout_devices"] = *j.LogoutDevices
		}
	}
	return ch, nil
}

// Run plans the row and sends the write it needs. Errors from Synapse are
// returned for the caller to classify (retry, stop, or fail the row).
func (j *Job) Run(ctx context.Context, env Env, st *State) (Result, error) {
	ch, err := j.Plan(ctx, env, st)
	if err != nil {
		return Result{}, err
	}
	if ch.Skip != "" {
		return Result{Outcome: journal.Skipped, Note: ch.Skip}, nil
	}
	if !ch.Create && len(ch.Body) == 0 {
		return j.settled(st), nil
	}
	if env.Begin != nil && !st.Begun {
		if err := env.Begin(); err != nil {
			return Result{}, err
		}
	}
	st.Begun = true
	_, hasPassword := ch.Body["password"]
	created, err := env.Client.PutUser(ctx, j.UserID, ch.Body)
	if err != nil {
		if hasPassword && synapse.Uncertain(err) {
			st.PasswordUnsure = true
		}
		return Result{}, fmt.Errorf("write %s (%s): %w", j.UserID, strings.Join(ch.Fields, ", "), err)
	}
	res := Result{Outcome: journal.Done, Changed: ch.Fields, Status: 200}
	if created {
		res.Status = 201
		res.Note = "created"
	}
	if st.PasswordUnsure {
		res.Outcome = journal.Uncertain
		res.Note = "the password write's answer was lost, so it may or may not be set; it was not resent so nobody is logged out twice: check, or reset it with action reset-password"
	}
	return res, nil
}

// settled is the result for a row the account already matches.
func (j *Job) settled(st *State) Result {
	switch {
	case st.PasswordUnsure:
		return Result{Outcome: journal.Uncertain, Note: "the password write's answer was lost, so it may or may not be set; it was not resent so nobody is logged out twice"}
	case st.Begun:
		return Result{Outcome: journal.Done, Note: "already applied by an interrupted attempt"}
	}
	return Result{Outcome: journal.Unchanged}
}

// threepids is the list the account should end with: the row's addresses
// merged into cur, or replacing cur's addresses of the same medium.
func (j *Job) threepids(cur []synapse.Threepid) []synapse.Threepid {
	out := []synapse.Threepid{}
	for _, m := range []struct {
		medium string
		list   *List
	}{{"email", j.Emails}, {"msisdn", j.Msisdns}} {
		var addrs []string
		if m.list == nil || !m.list.Replace {
			for _, t := range cur {
				if t.Medium == m.medium {
					addrs = appendNew(addrs, canonicalAddr(t))
				}
			}
		}
		if m.list != nil {
			for _, a := range m.list.Values {
				addrs = appendNew(addrs, a)
			}
		}
		for _, a := range addrs {
			out = append(out, synapse.Threepid{Medium: m.medium, Address: a})
		}
	}
	// Keep media Synapse may have that rows cannot name.
	for _, t := range cur {
		if t.Medium != "email" && t.Medium != "msisdn" {
			out = append(out, synapse.Threepid{Medium: t.Medium, Address: t.Address})
		}
	}
	return out
}

func (j *Job) externalIDs(cur []synapse.ExternalID) []synapse.ExternalID {
	out := []synapse.ExternalID{}
	if !j.ReplaceIDs {
		out = append(out, cur...)
	}
	for _, x := range j.ExternalIDs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// guardThreepids checks every address the write would add. Synapse moves a
// threepid that belongs to another user without a word, so look first.
func (j *Job) guardThreepids(ctx context.Context, c *synapse.Client, want, cur []synapse.Threepid) error {
	for _, t := range want {
		if slices.ContainsFunc(cur, func(x synapse.Threepid) bool { return x.Medium == t.Medium && canonicalAddr(x) == t.Address }) {
			continue
		}
		owner, err := c.ThreepidOwner(ctx, t.Medium, t.Address)
		if err != nil {
			return fmt.Errorf("look up owner of %s %s: %w", t.Medium, t.Address, err)
		}
		if owner != "" && owner != j.UserID {
			return rowErr("%s %s belongs to %s: not moved (Synapse would move it silently)", t.Medium, t.Address, owner)
		}
	}
	return nil
}

// guardExternalIDs checks every mapping the write would add. Synapse refuses
// a taken one with a 409 only after creating the account: look first.
func (j *Job) guardExternalIDs(ctx context.Context, c *synapse.Client, want, cur []synapse.ExternalID) error {
	for _, x := range want {
		if slices.Contains(cur, x) {
			continue
		}
		owner, err := c.ExternalIDOwner(ctx, x.AuthProvider, x.ExternalID)
		if err != nil {
			return fmt.Errorf("look up owner of external id %s:%s: %w", x.AuthProvider, x.ExternalID, err)
		}
		if owner != "" && owner != j.UserID {
			return rowErr("external id %s:%s belongs to %s", x.AuthProvider, x.ExternalID, owner)
		}
	}
	return nil
}

func canonicalAddr(t synapse.Threepid) string {
	if t.Medium == "email" {
		return strings.ToLower(strings.TrimSpace(t.Address))
	}
	return t.Address
}

func sameThreepids(a, b []synapse.Threepid) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range a {
		if !slices.ContainsFunc(b, func(x synapse.Threepid) bool { return x.Medium == t.Medium && canonicalAddr(x) == canonicalAddr(t) }) {
			return false
		}
	}
	return true
}

func sameIDs(a, b []synapse.ExternalID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// IsRowError reports whether err fails only its row, for good.
func IsRowError(err error) bool {
	var r *RowError
	return errors.As(err, &r)
}
