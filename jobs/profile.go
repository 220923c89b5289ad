package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/synapse"
)

// profileColumns are the columns of create, update and upsert rows.
var profileColumns = []string{"displayname", "avatar_url", "password", "user_type", "admin", "logout_devices",
	"emails", "msisdns", "external_ids", "clear", "rooms"}

// clearable names the fields the clear column may list.
var clearable = []string{"displayname", "avatar_url", "user_type", "emails", "msisdns", "external_ids"}

// profile is the payload of create, update and upsert rows: the account's
// fields as the row gives them.
type profile struct {
	// Scalars: nil leaves the field alone; "" clears it.
	Displayname *string
	AvatarURL   *string
	UserType    *string

	Admin         *bool
	LogoutDevices *bool

	Emails      *List
	Msisdns     *List
	ExternalIDs []synapse.ExternalID
	ReplaceIDs  bool // external ids replace the user's list
	HasIDs      bool // the row says something about external ids

	Rooms []string // room ids or aliases to join
}

// parseProfile reads the user columns of create, update and upsert rows.
func parseProfile(p *parser, j *Job) any {
	pr := &profile{}
	clears := p.clears()
	pr.Displayname = p.clearOrSet("displayname", clears, func(v string) {
		if utf8.RuneCountInString(v) > 256 {
			p.bad("displayname", "longer than 256 characters")
		}
	})
	pr.AvatarURL = p.clearOrSet("avatar_url", clears, func(v string) {
		if err := checkMXC(v); err != nil {
			p.bad("avatar_url", "%v", err)
		}
	})
	pr.UserType = p.clearOrSet("user_type", clears, func(v string) {
		if v != "bot" && v != "support" {
			p.bad("user_type", "unknown user type %s (want bot or support; list user_type in the clear column to remove it)", formats.Quote(v))
		}
	})
	p.password(j)
	pr.Admin = p.boolean("admin")
	pr.LogoutDevices = p.boolean("logout_devices")

	replace := p.opt.ReplaceLists
	pr.Emails = p.threepids("emails", clears["emails"], replace, canonicalEmail)
	pr.Msisdns = p.threepids("msisdns", clears["msisdns"], replace, func(v string) (string, error) { return canonicalMsisdn(v, p.opt.PhoneRegion) })
	var given bool
	pr.ExternalIDs, given = p.externalIDs()
	if given && clears["external_ids"] {
		p.bad("external_ids", "both set and listed in the clear column")
	}
	switch {
	case given:
		pr.HasIDs, pr.ReplaceIDs = true, replace
	case clears["external_ids"]:
		pr.HasIDs, pr.ReplaceIDs = true, true
	}
	pr.Rooms = p.rooms()
	return pr
}

// clears reads the clear column: the fields the row removes.
func (p *parser) clears() map[string]bool {
	clears := map[string]bool{}
	if f, ok := p.row.Fields["clear"]; ok {
		for _, c := range p.list(f) {
			c = strings.ToLower(c)
			if !slices.Contains(clearable, c) {
				p.bad("clear", "cannot clear %s (clearable: %s)", formats.Quote(c), strings.Join(clearable, ", "))
				continue
			}
			clears[c] = true
		}
	}
	return clears
}

// clearOrSet reads a scalar the clear column may empty; check sees a value
// that is set.
func (p *parser) clearOrSet(col string, clears map[string]bool, check func(string)) *string {
	v, ok := p.scalar(col)
	switch {
	case ok && clears[col]:
		p.bad(col, "both set and listed in the clear column")
		return nil
	case clears[col]:
		empty := ""
		return &empty
	case !ok:
		return nil
	}
	check(v)
	return &v
}

// planProfile plans create, update and upsert rows: one PUT of the fields
// that differ, then a join for each room the user is not in.
func planProfile(ctx context.Context, j *Job, env Env, st *State, p *Plan) error {
	pr := j.payload.(*profile)
	c := env.Client
	u, err := c.GetUser(ctx, p.UserID)
	if err != nil && !synapse.IsNotFound(err) {
		return fmt.Errorf("read %s: %w", p.UserID, err)
	}
	if u == nil {
		if j.Action == Update {
			return rowErr("%s does not exist (action update changes existing users only)", p.UserID)
		}
		if env.CheckNames {
			if err := checkUsername(ctx, c, p.UserID); err != nil {
				return raced(st, st.Begun, err)
			}
		}
		p.Kind = KindCreate
		if err := pr.planCreate(ctx, j, env, st, p); err != nil {
			return err
		}
		// The new user is in no room yet.
		return planJoins(ctx, env, p, pr.Rooms, nil)
	}
	if j.Action == Create {
		switch {
		case st.Begun:
			// This run or an interrupted one created it: finish the job.
		case bool(u.Deactivated):
			// A create row means a new person; a departed one's id is never
			// given to another account, and "skip: exists" would read as if
			// the newcomer had one.
			return conflict("%s is taken by a deactivated account (a Matrix id is never reused): give the new account another user_id, or reactivate this one", p.UserID)
		case env.OnExists == ExistsFail:
			return rowErr("%s already exists (--on-exists fail)", p.UserID)
		case env.OnExists == ExistsUpdate:
		default:
			p.Kind, p.Reason = KindSkip, "user exists (--on-exists skip)"
			return nil
		}
	}
	if j.HasPassword() && !j.spec.setsPassword {
		p.note("password: kept (account exists)")
	}
	if err := pr.planUpdate(ctx, j, env, u, st, p); err != nil {
		return err
	}
	// A deactivated account that already matches is left alone (an
	// exported sheet applied back says unchanged); changing one is refused.
	if bool(u.Deactivated) && len(p.steps) > 0 {
		return rowErr("%s is deactivated: reactivate it before changing it", p.UserID)
	}
	if len(pr.Rooms) > 0 {
		joined, err := c.JoinedRooms(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read rooms of %s: %w", p.UserID, err)
		}
		return planJoins(ctx, env, p, pr.Rooms, joined)
	}
	return nil
}

// checkUsername asks the server whether a new account may take the id's
// localpart, so that plan shows a name Synapse would refuse as a conflict:
// one an account holds in another letter case, one in an application
// service's exclusive namespace, or one that is not a valid name there.
func checkUsername(ctx context.Context, c *synapse.Client, userID string) error {
	local := localpart(userID)
	ok, why, err := c.UsernameAvailable(ctx, local)
	switch {
	case synapse.IsNotFound(err):
		return nil // the server has no such Admin API (older Synapse, MAS): the create itself is refused if need be
	case err != nil:
		return fmt.Errorf("ask whether the name %s is available: %w", local, err)
	case ok:
		return nil
	}
	if c := nameRefused(local, why); c != nil {
		return c
	}
	return conflict("the server refuses the name %s for a new account: %s", local, why.Message)
}

// nameRefused is the row's conflict when Synapse refuses a new account's
// name (in username_available, or in the create's PUT, which runs the same
// check and creates nothing then), or nil for another answer.
func nameRefused(local string, err error) error {
	var se *synapse.Error
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		return nil
	}
	var msg string
	switch se.Errcode {
	case "M_USER_IN_USE":
		msg = fmt.Sprintf("the name %s is taken: an account with the same name in other letter case exists (%s)", local, se.Message)
	case "M_EXCLUSIVE":
		msg = fmt.Sprintf("the name %s is reserved by an application service (%s)", local, se.Message)
	case "M_INVALID_USERNAME":
		msg = fmt.Sprintf("the server refuses the name %s for a new account: %s", local, se.Message)
	default:
		return nil
	}
	return &RowError{Msg: msg, Conflict: true, cause: se}
}

// raced is a create's refusal because its account exists (Synapse's
// M_USER_IN_USE, MAS's 409) for a row whose write began before: a killed
// run's create, or one whose answer was lost, may still be landing after
// this attempt's plan found no account. Such a row is planned once more
// (synapse.Again), and its account read back, instead of failing as taken;
// a second such refusal, any other refusal of the name, and a row that had
// not begun stay conflicts.
//
// begun is whether the row had begun when this attempt planned it: this
// attempt's own begin does not count (the account is then another's).
func raced(st *State, begun bool, conflict error) error {
	var re *RowError
	var se *synapse.Error
	if !begun || st.replanned || !errors.As(conflict, &re) || !re.Conflict || !errors.As(conflict, &se) ||
		!(se.Errcode == "M_USER_IN_USE" || se.Status == http.StatusConflict) {
		return conflict
	}
	st.replanned = true
	return &synapse.Again{Err: fmt.Errorf("%w (a create of this row began earlier and may have landed since: reading the account again)", conflict)}
}

func localpart(userID string) string {
	local, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return local
}

// putter builds one PUT /v2/users body and what it changes.
type putter struct {
	body    map[string]any
	changes []FieldChange
	fields  []string
}

func (b *putter) set(field string, v any, old, new string) {
	if b.body == nil {
		b.body = map[string]any{}
	}
	b.body[field] = v
	b.fields = append(b.fields, field)
	b.changes = append(b.changes, FieldChange{Field: field, Old: old, New: new})
}

// step turns the body into the plan's write. With a password, the write is
// marked so a lost answer is not followed by a second one.
func (b *putter) step(j *Job, logout *bool, env Env, st *State, p *Plan, withPassword bool) {
	if b.body == nil && !withPassword && p.Kind != KindCreate {
		return
	}
	body := b.body
	if body == nil {
		body = map[string]any{}
	}
	fields := b.fields
	if withPassword {
		p.Changes = append(p.Changes, FieldChange{Field: "password", New: "set"})
		fields = append([]string{"password"}, fields...)
	}
	p.Changes = append(p.Changes, b.changes...)
	id, create := p.UserID, p.Kind == KindCreate
	begun := st.Begun // before this attempt's own begin
	p.steps = append(p.steps, step{fields: fields, password: withPassword, do: func(ctx context.Context) (int, error) {
		send := body
		if withPassword {
			pw, err := j.passwordFor(env, st, id)
			if err != nil {
				return 0, err
			}
			send = make(map[string]any, len(body)+2)
			for k, v := range body {
				send[k] = v
			}
			send["password"] = pw
			if logout != nil {
				send["logout_devices"] = *logout
			}
		}
		created, err := env.Client.PutUser(ctx, id, send)
		if create {
			if c := nameRefused(localpart(id), err); c != nil {
				return 0, raced(st, begun, c)
			}
		}
		if created {
			return 201, err
		}
		return 200, err
	}})
}

func (j *profile) planCreate(ctx context.Context, job *Job, env Env, st *State, p *Plan) error {
	var b putter
	if j.Displayname != nil && *j.Displayname != "" {
		b.set("displayname", *j.Displayname, "", *j.Displayname)
	}
	if j.AvatarURL != nil && *j.AvatarURL != "" {
		b.set("avatar_url", *j.AvatarURL, "", *j.AvatarURL)
	}
	if j.UserType != nil && *j.UserType != "" {
		b.set("user_type", *j.UserType, "", *j.UserType)
	}
	if j.Admin != nil {
		b.set("admin", *j.Admin, "", fmt.Sprint(*j.Admin))
	}
	tp := j.threepids(nil)
	if len(tp) > 0 {
		if err := guardThreepids(ctx, env.Client, p.UserID, tp, nil); err != nil {
			return err
		}
		b.set("threepids", tp, "", threepidsText(tp))
	}
	if len(j.ExternalIDs) > 0 {
		if err := guardExternalIDs(ctx, env.Client, p.UserID, j.ExternalIDs, nil); err != nil {
			return err
		}
		b.set("external_ids", j.ExternalIDs, "", idsText(j.ExternalIDs))
	}
	b.step(job, j.LogoutDevices, env, st, p, job.HasPassword())
	if !job.HasPassword() && len(j.ExternalIDs) == 0 {
		p.note("warning: nobody can log in to it (no password, no external id)")
	}
	return nil
}

func (j *profile) planUpdate(ctx context.Context, job *Job, env Env, u *synapse.User, st *State, p *Plan) error {
	c := env.Client
	var b putter
	if j.Displayname != nil && *j.Displayname != deref(u.Displayname) {
		b.set("displayname", *j.Displayname, deref(u.Displayname), *j.Displayname)
	}
	if j.AvatarURL != nil && *j.AvatarURL != deref(u.AvatarURL) {
		b.set("avatar_url", *j.AvatarURL, deref(u.AvatarURL), *j.AvatarURL)
	}
	if j.UserType != nil && *j.UserType != deref(u.UserType) {
		var v any = *j.UserType
		if *j.UserType == "" {
			v = nil
		}
		b.set("user_type", v, deref(u.UserType), *j.UserType)
	}
	if j.Admin != nil && *j.Admin != bool(u.Admin) {
		b.set("admin", *j.Admin, fmt.Sprint(bool(u.Admin)), fmt.Sprint(*j.Admin))
	}
	if j.Emails != nil || j.Msisdns != nil {
		tp := j.threepids(u.Threepids)
		if !sameThreepids(tp, u.Threepids) {
			if err := guardThreepids(ctx, c, p.UserID, tp, u.Threepids); err != nil {
				return err
			}
			b.set("threepids", tp, threepidsText(u.Threepids), threepidsText(tp))
		}
	}
	if j.HasIDs {
		ids := mergeIDs(u.ExternalIDs, j.ExternalIDs, j.ReplaceIDs)
		if !sameIDs(ids, u.ExternalIDs) {
			if err := guardExternalIDs(ctx, c, p.UserID, ids, u.ExternalIDs); err != nil {
				return err
			}
			b.set("external_ids", ids, idsText(u.ExternalIDs), idsText(ids))
			secondSubjects(p, ids, u.ExternalIDs)
		}
	}
	// On create and upsert the password is the initial one: an account that
	// exists keeps its password, so re-applying an onboarding sheet never
	// logs anyone out. An update row sets it, unless an earlier attempt's
	// answer was lost (then it may be set already; see State).
	withPassword := job.spec.setsPassword && job.HasPassword() && !st.PasswordUnsure && !st.PasswordSet
	b.step(job, j.LogoutDevices, env, st, p, withPassword)
	return nil
}

func threepidsText(ts []synapse.Threepid) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Medium+":"+t.Address)
	}
	return strings.Join(s, ";")
}

func idsText(ids []synapse.ExternalID) string {
	var s []string
	for _, x := range ids {
		s = append(s, x.AuthProvider+":"+x.ExternalID)
	}
	return strings.Join(s, ";")
}

// threepids is the list the account should end with: the row's addresses
// merged into cur, or replacing cur's addresses of the same medium.
func (j *profile) threepids(cur []synapse.Threepid) []synapse.Threepid {
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

// mergeIDs is the list of external ids the account should end with.
func mergeIDs(cur, row []synapse.ExternalID, replace bool) []synapse.ExternalID {
	out := []synapse.ExternalID{}
	if !replace {
		out = append(out, cur...)
	}
	for _, x := range row {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// guardThreepids checks every address the write would add. Synapse moves a
// threepid that belongs to another user without a word, so look first.
func guardThreepids(ctx context.Context, c *synapse.Client, id string, want, cur []synapse.Threepid) error {
	for _, t := range want {
		if slices.ContainsFunc(cur, func(x synapse.Threepid) bool { return x.Medium == t.Medium && canonicalAddr(x) == t.Address }) {
			continue
		}
		owner, err := c.ThreepidOwner(ctx, t.Medium, t.Address)
		if err != nil {
			return fmt.Errorf("look up owner of %s %s: %w", t.Medium, t.Address, err)
		}
		if owner != "" && owner != id {
			return conflict("%s %s belongs to %s: not moved (Synapse would move it silently)", t.Medium, t.Address, owner)
		}
	}
	return nil
}

// guardExternalIDs checks every mapping the write would add. Synapse refuses
// a taken one with a 409 only after creating the account: look first.
func guardExternalIDs(ctx context.Context, c *synapse.Client, id string, want, cur []synapse.ExternalID) error {
	for _, x := range want {
		if slices.Contains(cur, x) {
			continue
		}
		owner, err := externalIDOwner(ctx, c, x)
		if err != nil {
			return fmt.Errorf("look up owner of external id %s:%s: %w", x.AuthProvider, x.ExternalID, err)
		}
		if owner != "" && owner != id {
			return conflict("external id %s:%s belongs to %s", x.AuthProvider, x.ExternalID, owner)
		}
	}
	return nil
}

// externalIDOwner is the user an external id maps to, "" when none does.
// Synapse's lookup is cached, and clearing a user's mappings (a PUT with
// fewer external_ids) invalidates only the ids the PUT sends, so for a
// while the lookup still names a user whose own record no longer holds
// the id: the owner's record decides.
func externalIDOwner(ctx context.Context, c *synapse.Client, x synapse.ExternalID) (string, error) {
	owner, err := c.ExternalIDOwner(ctx, x.AuthProvider, x.ExternalID)
	if err != nil || owner == "" {
		return owner, err
	}
	u, err := c.GetUser(ctx, owner)
	if synapse.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", owner, err)
	}
	if !slices.Contains(u.ExternalIDs, x) {
		return "", nil
	}
	return owner, nil
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

func (j *profile) claims(f func(column, what string)) {
	if j.Emails != nil {
		for _, e := range j.Emails.Values {
			f("emails", "email "+e)
		}
	}
	if j.Msisdns != nil {
		for _, m := range j.Msisdns.Values {
			f("msisdns", "msisdn "+m)
		}
	}
	claimIDs(j.ExternalIDs, f)
}

func claimIDs(ids []synapse.ExternalID, f func(column, what string)) {
	for _, x := range ids {
		f("external_ids", "external id "+x.AuthProvider+":"+x.ExternalID)
	}
}

// secondSubjects notes each provider the write gives the user a subject at
// while the user keeps one there already: Synapse allows it, and it is
// seldom meant (a sheet from a second identity provider, a typo).
func secondSubjects(p *Plan, ids, cur []synapse.ExternalID) {
	for _, x := range ids {
		if slices.Contains(cur, x) {
			continue
		}
		var had []string
		for _, c := range cur {
			if c.AuthProvider == x.AuthProvider && slices.Contains(ids, c) {
				had = append(had, c.AuthProvider+":"+c.ExternalID)
			}
		}
		if len(had) > 0 {
			p.note("note: a second subject at %s (has %s)", x.AuthProvider, strings.Join(had, ";"))
		}
	}
}
