package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"
)

// On a homeserver that delegates its accounts to MAS, the rows mean what
// they mean on a plain Synapse; only where they write differs. MAS owns the
// account, its password, emails, upstream links, admin flag, lock and
// deactivation; Synapse keeps profiles (display name, avatar, user type),
// rooms and media. Every MAS write is one that can be judged by a read: a
// lost answer is settled by reading MAS back before anything is sent again
// (the row's plan runs again on each attempt and reads MAS first), and a
// 409 is read back the same way, so a write of ours that landed is never a
// failed row. MAS's set-password ends no session, so a password is sent
// again rather than left uncertain.

// masPlanFor is the plan an action has on a MAS server: its MAS plan when
// MAS owns what it writes, its own when Synapse still does. (Every user
// action MAS owns is mapped: none is refused.)
func masPlanFor(s *Spec) planFunc {
	switch s.Name {
	case Create, Update, Upsert:
		return planProfileMAS
	case ResetPassword:
		return withMASUser(false, planResetPasswordMAS)
	case Lock:
		return withMASUser(false, planLockMAS(true))
	case Unlock:
		return withMASUser(true, planLockMAS(false))
	case Deactivate:
		return withMASUser(true, planDeactivateMAS)
	case Reactivate:
		return withMASUser(true, planReactivateMAS)
	case SetExternalIDs, RemoveExternalIDs:
		return withMASUser(false, planIDsMAS)
	case DeleteDevices:
		return withMASUser(false, planDeleteDevicesMAS)
	case RegistrationToken:
		return planRegTokenMAS
	}
	return s.plan
}

// masUser is a MAS user the plan's steps write to: for a new account its
// id is known only once the create step has run.
type masUser struct {
	id       string
	username string
}

// withMASUser reads the row's MAS user first; a user MAS does not hold is
// the row's error, as on Synapse.
func withMASUser(deactivatedOK bool, plan func(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *mas.User) error) planFunc {
	return func(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
		u, err := env.MAS.UserByUsername(ctx, localpart(p.UserID))
		if err != nil {
			return fmt.Errorf("read %s in MAS: %w", p.UserID, err)
		}
		if u == nil {
			return rowErr("%s does not exist in MAS", p.UserID)
		}
		if u.Deactivated() && !deactivatedOK {
			return rowErr("%s is deactivated", p.UserID)
		}
		return plan(ctx, j, env, st, p, u)
	}
}

func masState(u *mas.User) string {
	switch {
	case u == nil:
		return ""
	case u.Deactivated():
		return "deactivated"
	case u.Locked():
		return "locked"
	}
	return "active"
}

// planProfileMAS plans create, update and upsert rows on MAS: the MAS user
// (created with its display name and avatar, which MAS provisions into
// Synapse), then its password, emails, links and admin flag; an existing
// account's display name, avatar and user type through Synapse's Admin API,
// which still keeps profiles; then room joins.
func planProfileMAS(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	pr := j.payload.(*profile)
	if pr.Msisdns != nil && (len(pr.Msisdns.Values) > 0 || pr.Msisdns.Replace) {
		return rowErr("msisdns: MAS keeps no phone numbers, so a server whose accounts live in MAS cannot hold them: leave the msisdns column empty")
	}
	local := localpart(p.UserID)
	u, err := env.MAS.UserByUsername(ctx, local)
	if err != nil {
		return fmt.Errorf("read %s in MAS: %w", p.UserID, err)
	}
	target := &masUser{username: local}
	if u == nil {
		if j.Action == Update {
			return rowErr("%s does not exist (action update changes existing users only)", p.UserID)
		}
		p.Kind = KindCreate
		if err := pr.planMAS(ctx, j, env, st, p, target, nil, nil, true); err != nil {
			return err
		}
		return planJoins(ctx, env, p, pr.Rooms, nil)
	}
	target.id = u.ID
	if j.Action == Create {
		switch {
		case st.Begun:
			// This run or an interrupted one created it: finish the job.
		case u.Deactivated():
			return conflict("%s is taken by a deactivated account (a Matrix id is never reused): give the new account another user_id, or reactivate this one", p.UserID)
		case env.OnExists == ExistsFail:
			return rowErr("%s already exists (--on-exists fail)", p.UserID)
		case env.OnExists == ExistsUpdate:
		default:
			p.Kind, p.Reason = KindSkip, "user exists (--on-exists skip)"
			return nil
		}
	}
	su, err := env.Client.GetUser(ctx, p.UserID)
	if err != nil && !synapse.IsNotFound(err) {
		return fmt.Errorf("read %s: %w", p.UserID, err)
	}
	if err := pr.planMAS(ctx, j, env, st, p, target, u, su, false); err != nil {
		return err
	}
	if u.Deactivated() && len(p.steps) > 0 {
		return rowErr("%s is deactivated: reactivate it before changing it", p.UserID)
	}
	if len(pr.Rooms) > 0 && su != nil {
		joined, err := env.Client.JoinedRooms(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read rooms of %s: %w", p.UserID, err)
		}
		return planJoins(ctx, env, p, pr.Rooms, joined)
	}
	return nil
}

// planMAS adds the steps of a profile row on MAS. u is nil for a new
// account; su is Synapse's view of an existing one (nil while MAS has not
// provisioned it).
func (pr *profile) planMAS(ctx context.Context, j *Job, env Env, st *State, p *Plan, t *masUser, u *mas.User, su *synapse.User, create bool) error {
	if create {
		pr.planCreateMAS(env, st, p, t)
	} else {
		pr.planNamesMAS(j, env, st, p, su)
	}
	if pr.UserType != nil && (create || su != nil) {
		pr.planUserTypeMAS(env, p, su)
	}
	planPasswordMAS(j, env, st, p, t, create)
	if err := planEmailsMAS(ctx, env, p, t, pr.Emails, u); err != nil {
		return err
	}
	if pr.HasIDs {
		if err := planLinksMAS(ctx, env, p, t, pr.ExternalIDs, pr.ReplaceIDs, u); err != nil {
			return err
		}
	}
	pr.planAdminMAS(env, p, t, u)
	if create && !j.HasPassword() && len(pr.ExternalIDs) == 0 {
		p.note("warning: nobody can log in to it (no password, no external id)")
	}
	return nil
}

// planCreateMAS adds the step that creates a new account in MAS, with the
// row's display name and avatar.
func (pr *profile) planCreateMAS(env Env, st *State, p *Plan, t *masUser) {
	m := env.MAS
	var dn, av *string
	if pr.Displayname != nil && *pr.Displayname != "" {
		dn = pr.Displayname
		p.Changes = append(p.Changes, FieldChange{Field: "displayname", New: *dn})
	}
	if pr.AvatarURL != nil && *pr.AvatarURL != "" {
		av = pr.AvatarURL
		p.Changes = append(p.Changes, FieldChange{Field: "avatar_url", New: *av})
	}
	p.Changes = append(p.Changes, FieldChange{Field: "account", New: "created in MAS"})
	begun := st.Begun // before this attempt's own begin
	p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
		nu, err := m.CreateUser(ctx, t.username, dn, av)
		if mas.IsConflict(err) {
			// The plan read no such user: another's, or a name the
			// homeserver reserves, or, for a row that began before, our
			// own earlier create still landing (raced).
			return 0, raced(st, begun, &RowError{Msg: fmt.Sprintf("the name %s is taken in MAS: %v", t.username, err), Conflict: true, cause: err})
		}
		if err != nil {
			return 0, err
		}
		t.id = nu.ID
		return 201, nil
	}})
}

// planNamesMAS changes an existing account's display name and avatar,
// through Synapse, once Synapse has provisioned it (su not nil).
func (pr *profile) planNamesMAS(j *Job, env Env, st *State, p *Plan, su *synapse.User) {
	var b putter
	if su != nil {
		if pr.Displayname != nil && *pr.Displayname != deref(su.Displayname) {
			b.set("displayname", *pr.Displayname, deref(su.Displayname), *pr.Displayname)
		}
		if pr.AvatarURL != nil && *pr.AvatarURL != deref(su.AvatarURL) {
			b.set("avatar_url", *pr.AvatarURL, deref(su.AvatarURL), *pr.AvatarURL)
		}
	} else if pr.Displayname != nil || pr.AvatarURL != nil {
		p.note("display name and avatar: Synapse has not provisioned %s yet; a later run sets them", p.UserID)
	}
	if b.body != nil {
		b.step(j, nil, env, st, p, false)
	}
}

// planUserTypeMAS sets the user type through Synapse when it differs from
// Synapse's (su is nil for a new account: no type yet).
func (pr *profile) planUserTypeMAS(env Env, p *Plan, su *synapse.User) {
	cur := ""
	if su != nil {
		cur = deref(su.UserType)
	}
	if *pr.UserType == cur {
		return
	}
	var v any = *pr.UserType
	if *pr.UserType == "" {
		v = nil
	}
	putStep(env, p, "user_type", v, cur, *pr.UserType)
}

// planPasswordMAS sets the password of a new account, of an update row,
// and of a create or upsert row that began (its account may have been made
// without it). On MAS a password write ends no session, so sending it
// again is safe.
func planPasswordMAS(j *Job, env Env, st *State, p *Plan, t *masUser, create bool) {
	if !j.HasPassword() {
		return
	}
	if !create && !j.spec.setsPassword && !st.Begun {
		p.note("password: kept (account exists)")
		return
	}
	m := env.MAS
	p.Changes = append(p.Changes, FieldChange{Field: "password", New: "set"})
	id := p.UserID
	p.steps = append(p.steps, step{fields: []string{"password"}, do: func(ctx context.Context) (int, error) {
		pw, err := j.passwordFor(env, st, id)
		if err != nil {
			return 0, err
		}
		return 200, m.SetPassword(ctx, t.id, pw)
	}})
}

// planAdminMAS sets MAS's admin flag when the row gives one that differs.
func (pr *profile) planAdminMAS(env Env, p *Plan, t *masUser, u *mas.User) {
	if pr.Admin == nil || u != nil && u.Admin == *pr.Admin {
		return
	}
	m := env.MAS
	old := ""
	if u != nil {
		old = fmt.Sprint(u.Admin)
	}
	want := *pr.Admin
	p.Changes = append(p.Changes, FieldChange{Field: "admin", Old: old, New: fmt.Sprint(want)})
	p.steps = append(p.steps, step{fields: []string{"admin"}, do: func(ctx context.Context) (int, error) {
		return 200, m.SetAdmin(ctx, t.id, want)
	}})
}

// planEmailsMAS adds and (with replace) removes addresses. MAS keeps each
// address for one user: one another user holds is a conflict (never moved).
func planEmailsMAS(ctx context.Context, env Env, p *Plan, t *masUser, want *List, u *mas.User) error {
	if want == nil {
		return nil
	}
	m := env.MAS
	var cur []mas.Email
	if u != nil {
		var err error
		if cur, err = m.Emails(ctx, u.ID); err != nil {
			return fmt.Errorf("read the emails of %s in MAS: %w", p.UserID, err)
		}
	}
	has := func(a string) bool {
		return slices.ContainsFunc(cur, func(e mas.Email) bool { return strings.EqualFold(e.Email, a) })
	}
	var curText []string
	for _, e := range cur {
		curText = append(curText, "email:"+strings.ToLower(e.Email))
	}
	var adds []string
	for _, a := range want.Values {
		if has(a) {
			continue
		}
		owner, err := m.EmailByAddress(ctx, a)
		if err != nil {
			return fmt.Errorf("look up owner of email %s in MAS: %w", a, err)
		}
		if owner != nil && (u == nil || owner.UserID != u.ID) {
			return conflict("email %s belongs to another MAS user (%s): not moved (MAS keeps each address for one user)", a, owner.UserID)
		}
		adds = append(adds, a)
	}
	var dels []mas.Email
	if want.Replace {
		for _, e := range cur {
			if !slices.ContainsFunc(want.Values, func(a string) bool { return strings.EqualFold(a, e.Email) }) {
				dels = append(dels, e)
			}
		}
	}
	if len(adds) == 0 && len(dels) == 0 {
		return nil
	}
	var newText []string
	for _, e := range cur {
		if !slices.ContainsFunc(dels, func(d mas.Email) bool { return d.ID == e.ID }) {
			newText = append(newText, "email:"+strings.ToLower(e.Email))
		}
	}
	for _, a := range adds {
		newText = append(newText, "email:"+a)
	}
	p.Changes = append(p.Changes, FieldChange{Field: "threepids", Old: strings.Join(curText, ";"), New: strings.Join(newText, ";")})
	p.steps = append(p.steps, step{fields: []string{"threepids"}, do: func(ctx context.Context) (int, error) {
		for _, d := range dels {
			if err := m.DeleteEmail(ctx, d.ID); err != nil && !synapse.IsNotFound(err) {
				return 0, fmt.Errorf("remove email %s: %w", d.Email, err)
			}
		}
		for _, a := range adds {
			if err := addEmailOnce(ctx, m, t.id, a); err != nil {
				return 0, err
			}
		}
		return 200, nil
	}})
	return nil
}

// addEmailOnce adds an address; a 409 is read back: held by this user, it
// is our own earlier write (its answer lost), so done.
func addEmailOnce(ctx context.Context, m *mas.Client, userID, a string) error {
	err := m.AddEmail(ctx, userID, a)
	if !mas.IsConflict(err) {
		return err
	}
	owner, rerr := m.EmailByAddress(ctx, a)
	if rerr != nil {
		return fmt.Errorf("add email %s: %w; reading it back: %w", a, err, rerr)
	}
	if owner != nil && owner.UserID == userID {
		return nil
	}
	return &RowError{Msg: fmt.Sprintf("email %s belongs to another MAS user: not moved (MAS keeps each address for one user)", a), Conflict: true, cause: err}
}

// masProvider resolves a row's provider name to MAS's provider (see
// MatchProviders): false for none, or for a name that picks several.
func masProvider(ps []mas.Provider, name string) (string, bool) {
	id, err := resolveMASProvider(ps, name)
	return id, err == nil
}

// ProviderName is how an export names a MAS provider: its human name when
// it has one, else its id.
func ProviderName(pv mas.Provider) string {
	if pv.HumanName != nil && *pv.HumanName != "" && !strings.Contains(*pv.HumanName, ":") {
		return *pv.HumanName
	}
	return pv.ID
}

type masLink struct {
	provider, subject string
}

// planLinksMAS makes the user's upstream links match: adds the row's, and
// with replace removes the others. A subject linked to another user is a
// conflict; MAS refuses a second link of a subject even to the same user,
// so one already there is left alone.
func planLinksMAS(ctx context.Context, env Env, p *Plan, t *masUser, ids []synapse.ExternalID, replace bool, u *mas.User) error {
	m := env.MAS
	ps, err := m.Providers(ctx)
	if err != nil {
		return fmt.Errorf("read MAS's upstream providers: %w", err)
	}
	names := map[string]string{}
	for _, pv := range ps {
		names[pv.ID] = ProviderName(pv)
	}
	var cur []mas.Link
	if u != nil {
		if cur, err = m.Links(ctx, u.ID); err != nil {
			return fmt.Errorf("read the upstream links of %s in MAS: %w", p.UserID, err)
		}
	}
	adds, err := masLinksToAdd(ctx, m, ps, cur, ids, u)
	if err != nil {
		return err
	}
	var dels []mas.Link
	if replace {
		dels = masLinksToRemove(ps, cur, ids)
	}
	if len(adds) == 0 && len(dels) == 0 {
		return nil
	}
	text := func(l masLink) string { return names[l.provider] + ":" + l.subject }
	var curText, newText []string
	for _, c := range cur {
		curText = append(curText, text(masLink{c.ProviderID, c.Subject}))
		if !slices.ContainsFunc(dels, func(d mas.Link) bool { return d.ID == c.ID }) {
			newText = append(newText, text(masLink{c.ProviderID, c.Subject}))
		}
	}
	for _, a := range adds {
		newText = append(newText, text(a))
	}
	p.Changes = append(p.Changes, FieldChange{Field: "external_ids", Old: strings.Join(curText, ";"), New: strings.Join(newText, ";")})
	p.steps = append(p.steps, step{fields: []string{"external_ids"}, do: func(ctx context.Context) (int, error) {
		for _, d := range dels {
			if err := m.DeleteLink(ctx, d.ID); err != nil && !synapse.IsNotFound(err) {
				return 0, fmt.Errorf("remove link %s: %w", text(masLink{d.ProviderID, d.Subject}), err)
			}
		}
		for _, a := range adds {
			if err := addLinkOnce(ctx, m, t.id, a.provider, a.subject); err != nil {
				return 0, fmt.Errorf("link %s: %w", text(a), err)
			}
		}
		return 200, nil
	}})
	return nil
}

// masLinksToAdd is the row's links the user lacks (cur), each checked to be
// free: a subject linked to another user (u nil: any user) is a conflict.
func masLinksToAdd(ctx context.Context, m *mas.Client, ps []mas.Provider, cur []mas.Link, ids []synapse.ExternalID, u *mas.User) ([]masLink, error) {
	var adds []masLink
	for _, x := range ids {
		pid, err := resolveMASProvider(ps, x.AuthProvider)
		if err != nil {
			return nil, fmt.Errorf("external_ids: %w", err)
		}
		if slices.ContainsFunc(cur, func(c mas.Link) bool { return c.ProviderID == pid && c.Subject == x.ExternalID }) {
			continue
		}
		owner, err := m.LinkBySubject(ctx, pid, x.ExternalID)
		if err != nil {
			return nil, fmt.Errorf("look up owner of external id %s:%s in MAS: %w", x.AuthProvider, x.ExternalID, err)
		}
		if owner != nil && owner.Owner() != "" && (u == nil || owner.Owner() != u.ID) {
			return nil, conflict("external id %s:%s belongs to another MAS user (%s)", x.AuthProvider, x.ExternalID, owner.Owner())
		}
		adds = append(adds, masLink{pid, x.ExternalID})
	}
	return adds, nil
}

// masLinksToRemove is the user's links (cur) that the row's ids do not
// name, for a replace.
func masLinksToRemove(ps []mas.Provider, cur []mas.Link, ids []synapse.ExternalID) []mas.Link {
	var dels []mas.Link
	for _, c := range cur {
		keep := slices.ContainsFunc(ids, func(x synapse.ExternalID) bool {
			pid, _ := masProvider(ps, x.AuthProvider)
			return pid == c.ProviderID && x.ExternalID == c.Subject
		})
		if !keep {
			dels = append(dels, c)
		}
	}
	return dels
}

// addLinkOnce adds a link; a 409 is read back by subject: linked to this
// user, it is our own earlier write whose answer was lost.
func addLinkOnce(ctx context.Context, m *mas.Client, userID, provider, subject string) error {
	err := m.AddLink(ctx, userID, provider, subject)
	if !mas.IsConflict(err) {
		return err
	}
	l, rerr := m.LinkBySubject(ctx, provider, subject)
	if rerr != nil {
		return fmt.Errorf("%w; reading it back: %w", err, rerr)
	}
	if l != nil && l.Owner() == userID {
		return nil
	}
	return &RowError{Msg: "the subject is linked to another MAS user", Conflict: true, cause: err}
}

func planIDsMAS(ctx context.Context, j *Job, env Env, _ *State, p *Plan, u *mas.User) error {
	l := j.payload.(*idList)
	t := &masUser{id: u.ID, username: u.Username}
	if j.Action == SetExternalIDs {
		return planLinksMAS(ctx, env, p, t, l.ids, l.replace, u)
	}
	// remove-external-ids: the listed links go.
	m := env.MAS
	ps, err := m.Providers(ctx)
	if err != nil {
		return fmt.Errorf("read MAS's upstream providers: %w", err)
	}
	cur, err := m.Links(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("read the upstream links of %s in MAS: %w", p.UserID, err)
	}
	for _, x := range l.ids {
		pid, ok := masProvider(ps, x.AuthProvider)
		if !ok {
			continue // a mistyped provider removes nothing
		}
		for _, c := range cur {
			if c.ProviderID == pid && c.Subject == x.ExternalID {
				c := c
				p.Changes = append(p.Changes, FieldChange{Field: "external_ids", Old: x.AuthProvider + ":" + x.ExternalID, New: ""})
				p.steps = append(p.steps, step{fields: []string{"external_ids"}, do: func(ctx context.Context) (int, error) {
					if err := m.DeleteLink(ctx, c.ID); err != nil && !synapse.IsNotFound(err) {
						return 0, err
					}
					return 200, nil
				}})
			}
		}
	}
	return nil
}

func planResetPasswordMAS(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *mas.User) error {
	pl := j.payload.(*resetPassword)
	logout := pl.logout == nil || *pl.logout
	desc := "set"
	if !logout {
		desc = "set (sessions stay)"
	}
	m, id := env.MAS, p.UserID
	p.Changes = append(p.Changes, FieldChange{Field: "password", New: desc})
	p.steps = append(p.steps, step{fields: []string{"password"}, do: func(ctx context.Context) (int, error) {
		pw, err := j.passwordFor(env, st, id)
		if err != nil {
			return 0, err
		}
		return 200, m.SetPassword(ctx, u.ID, pw)
	}})
	if logout {
		p.Changes = append(p.Changes, FieldChange{Field: "sessions", New: "ended"})
		p.steps = append(p.steps, step{fields: []string{"sessions"}, do: func(ctx context.Context) (int, error) {
			return 200, finishSessions(ctx, m, u.ID, nil)
		}})
	}
	return nil
}

// finishSessions ends the user's active MAS sessions (keep says which
// stay). Ending one that ended meanwhile is not an error.
func finishSessions(ctx context.Context, m *mas.Client, userID string, keep func(mas.Session) bool) error {
	ss, err := m.ActiveSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if keep != nil && keep(s) {
			continue
		}
		if err := finishOne(ctx, m, s); err != nil {
			return err
		}
	}
	return nil
}

// finishOne ends a session; one that ended meanwhile (404, or 400: already
// finished) is not an error.
func finishOne(ctx context.Context, m *mas.Client, s mas.Session) error {
	err := m.FinishSession(ctx, s)
	var se *synapse.Error
	if err == nil || synapse.IsNotFound(err) || (errors.As(err, &se) && se.Status == 400) {
		return nil
	}
	return fmt.Errorf("finish %s %s: %w", s.Kind, s.ID, err)
}

func planLockMAS(want bool) func(context.Context, *Job, Env, *State, *Plan, *mas.User) error {
	return func(_ context.Context, _ *Job, env Env, _ *State, p *Plan, u *mas.User) error {
		if u.Locked() == want {
			return nil
		}
		m := env.MAS
		p.Changes = append(p.Changes, FieldChange{Field: "locked", Old: fmt.Sprint(u.Locked()), New: fmt.Sprint(want)})
		p.steps = append(p.steps, step{fields: []string{"locked"}, do: func(ctx context.Context) (int, error) {
			if want {
				return 200, m.Lock(ctx, u.ID)
			}
			return 200, m.Unlock(ctx, u.ID)
		}})
		return nil
	}
}

func planDeactivateMAS(ctx context.Context, j *Job, env Env, st *State, p *Plan, u *mas.User) error {
	d := j.payload.(*deactivation)
	m := env.MAS
	// The redaction goes first, through Synapse with the run's
	// Synapse-admin token, as on a plain Synapse: MAS's deactivation makes
	// Synapse part the user from its rooms. It is planned even for an
	// account MAS has deactivated already (a resume after the redaction,
	// or an earlier row), since it reads what is left to redact.
	if d.redact {
		if err := planRedaction(ctx, env, st, p, &redaction{}); err != nil {
			return err
		}
	}
	// The uploads are Synapse's too: deleted while the account is as it
	// was, so a row stopped between the steps resumes with the rest in
	// order (as on a plain Synapse).
	if d.deleteMedia {
		if err := planDeleteAllMedia(ctx, env, p); err != nil {
			return err
		}
	}
	if d.clearIDs {
		links, err := m.Links(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("read the upstream links of %s in MAS: %w", p.UserID, err)
		}
		for _, l := range links {
			l := l
			p.Changes = append(p.Changes, FieldChange{Field: "external_ids", Old: l.ProviderID + ":" + l.Subject})
			p.steps = append(p.steps, step{fields: []string{"external_ids"}, do: func(ctx context.Context) (int, error) {
				if err := m.DeleteLink(ctx, l.ID); err != nil && !synapse.IsNotFound(err) {
					return 0, err
				}
				return 200, nil
			}})
		}
	}
	if u.Deactivated() {
		// MAS cannot say whether it erased: a deactivated account is left
		// as it is (erase it again through Synapse if need be).
		return nil
	}
	what := "deactivated"
	if d.erase {
		what = "deactivated and erased"
	}
	p.Erases = d.erase
	skip := !d.erase
	p.Changes = append(p.Changes, FieldChange{Field: "account", Old: masState(u), New: what})
	p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
		return 200, m.Deactivate(ctx, u.ID, skip)
	}})
	return nil
}

func planReactivateMAS(_ context.Context, j *Job, env Env, st *State, p *Plan, u *mas.User) error {
	if !u.Deactivated() {
		return nil
	}
	m, id := env.MAS, p.UserID
	p.Changes = append(p.Changes, FieldChange{Field: "account", Old: "deactivated", New: "active"})
	p.steps = append(p.steps, step{fields: []string{"account"}, do: func(ctx context.Context) (int, error) {
		return 200, m.Reactivate(ctx, u.ID)
	}})
	if j.HasPassword() {
		p.Changes = append(p.Changes, FieldChange{Field: "password", New: "set"})
		p.steps = append(p.steps, step{fields: []string{"password"}, do: func(ctx context.Context) (int, error) {
			pw, err := j.passwordFor(env, st, id)
			if err != nil {
				return 0, err
			}
			return 200, m.SetPassword(ctx, u.ID, pw)
		}})
	}
	return nil
}

// planDeleteDevicesMAS ends the MAS sessions behind the row's devices (with
// all, the user's browser sessions at MAS too; a device id names no
// browser session). With
// --inactive-days a session is old when neither side saw it used within the
// cutoff: MAS's last_active_at (its activity tracker) and, for a session
// with a device, Synapse's last_seen_ts of that device, the later of the
// two; a session neither side ever saw used is kept, as delete-devices
// keeps such a device on a plain Synapse. MAS, which owns sessions, ends
// them (a device Synapse deleted alone would come back with its session's
// next request).
func planDeleteDevicesMAS(ctx context.Context, j *Job, env Env, _ *State, p *Plan, u *mas.User) error {
	d, m := j.payload.(*devices), env.MAS
	ss, err := m.ActiveSessions(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("read the sessions of %s in MAS: %w", p.UserID, err)
	}
	devs, err := env.Client.Devices(ctx, p.UserID)
	if err != nil && !synapse.IsNotFound(err) {
		return fmt.Errorf("read devices of %s: %w", p.UserID, err)
	}
	cutoff := time.Now().Add(-time.Duration(env.InactiveDays) * 24 * time.Hour).UnixMilli()
	inactive := func(s mas.Session) bool {
		if env.InactiveDays == 0 {
			return true
		}
		var seen int64
		if s.LastActiveAt != nil {
			seen = s.LastActiveAt.UnixMilli()
		}
		if i := slices.IndexFunc(devs, func(x synapse.Device) bool { return s.DeviceID != "" && x.DeviceID == s.DeviceID }); i >= 0 {
			seen = max(seen, devs[i].LastSeenTS)
		}
		return seen != 0 && seen < cutoff
	}
	var end []mas.Session
	var names []string
	for _, s := range ss {
		switch {
		case d.all && inactive(s):
			// Every session ends with all, browser sessions (no device)
			// too: a browser session left at MAS would let the user's
			// clients get new tokens without signing in again.
		case s.DeviceID != "" && slices.Contains(d.ids, s.DeviceID) && inactive(s):
		default:
			continue
		}
		end = append(end, s)
		names = append(names, cmpOr(s.DeviceID, s.Kind+"/"+s.ID))
	}
	var missing []string
	for _, want := range d.ids {
		if !slices.ContainsFunc(ss, func(s mas.Session) bool { return s.DeviceID == want }) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		p.note("devices: %s not found", strings.Join(missing, ";"))
	}
	if len(end) == 0 {
		return nil
	}
	p.Changes = append(p.Changes, FieldChange{Field: "devices", Old: strings.Join(names, ";"), New: "deleted"})
	p.steps = append(p.steps, step{fields: []string{"devices"}, do: func(ctx context.Context) (int, error) {
		for _, s := range end {
			if err := finishOne(ctx, m, s); err != nil {
				return 0, err
			}
		}
		return 200, nil
	}})
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
