// Package jobs turns a manifest row into a job and runs it against Synapse:
// it validates the row, reads what the server holds, works out the smallest
// set of writes that makes the server match the row (the plan), guards
// against Synapse's silent hazards, and sends those writes. A row the server
// already matches sends no write, so every action is safe to repeat.
package jobs

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/synapse"
)

// Action is what a row asks for. Each action is a Spec in a file of its
// own (action_*.go), listed in registry.
type Action string

// commonColumns may appear on any row: who the row is about, and what it does.
var commonColumns = []string{"user_id", "action", "email", "external_id", "room_id"}

// OnExists says what a create row does when its account exists.
type OnExists string

// Choices for --on-exists.
const (
	ExistsSkip   OnExists = "skip"
	ExistsUpdate OnExists = "update"
	ExistsFail   OnExists = "fail"
)

// List is a list column: Values to add, or with Replace the whole list
// of that kind (an empty Values with Replace clears it).
type List struct {
	Values  []string
	Replace bool
}

// Job is one validated row: what every row has, and its action's own
// payload (what its parse read from the action's columns).
type Job struct {
	Row    int
	Key    string // identity of the row's intent; never derived from a password
	UserID string // "" when the row names its user by Match; on room rows ""
	Match  string // with --match-by email or external_id: the value to look up
	Action Action
	// RoomID is a room row's room: a room id or an alias (resolved when planned).
	RoomID string

	// password is kept unexported so that no encoder prints it by accident.
	// generate asks for a random one.
	password string
	generate bool

	spec    *Spec
	payload any
	// why says why --sync chose the account ("" for a manifest's row).
	why string
	// ignored are the headers of cells a closing row carries and does not
	// read (see unusedColumns).
	ignored []string
}

// Ignored lists the headers of the cells the row carries and ignores: a
// leaver's name and email on a deactivate row.
func (j *Job) Ignored() []string { return j.ignored }

// room reports whether the row is about a room.
func (j *Job) room() bool { return j.spec != nil && j.spec.Kind == RoomRow }

// Identity names what the row is about: its user id, or the value it
// matches its user by, or for a room row its room. Shards and duplicate
// checks go by it.
func (j *Job) Identity() string {
	if j.room() {
		return "room:" + j.RoomID
	}
	if t, ok := j.payload.(*regToken); ok {
		// A generated token's row is known by its key: the same row
		// twice is a repeat, two rows that differ make two tokens.
		if t.token == "" && t.label != "" {
			return "token:label " + t.label
		}
		return "token:" + cmp.Or(t.token, "generated "+j.Key)
	}
	if j.UserID != "" {
		return j.UserID
	}
	return "match:" + j.Match
}

// Subject is what the row acts on, for journals and plans: its room for a
// room row, else its user ("" until a matched user is resolved).
func (j *Job) Subject() string {
	if j.room() {
		return j.RoomID
	}
	if t, ok := j.payload.(*regToken); ok {
		return t.subject() // never a generated token's value
	}
	return j.UserID
}

// Generates reports whether the row may generate a password.
func (j *Job) Generates() bool { return j.generate }

// SetsPassword reports whether the row would set an existing account's
// password (create and upsert rows set one only on a new account).
func (j *Job) SetsPassword() bool {
	return j.HasPassword() && j.spec != nil && j.spec.setsPassword
}

// Intent is what the row asks for, to tell a harmless repeat from a
// disagreement: its key plus the password the key leaves out. It is only
// compared in memory, never written anywhere.
func (j *Job) Intent() string { return j.Key + "\x00" + j.password }

// HasPassword reports whether the row sets a password (given or generated).
func (j *Job) HasPassword() bool { return j.password != "" || j.generate }

// RowKey is a row's identity: what the row asks the server to make true.
// It hashes the row's cells, with the password's value left out (only
// whether it is given or generated counts), and of the options only those
// that change what this row asks: a default --action only for a row
// without an action cell, --phone-region only for a row with a number in
// national form, and so on (see RowOptions). An option that cannot change
// the row cannot change its key, so a resume with it set differently
// still finds the row finished. A resumed run knows a row by its key
// whatever the row's position, and can skip a finished row without
// parsing it.
func RowKey(row formats.Row, opt ParseOptions) string {
	return LegacyRowKey(row, RowOptions(row, opt))
}

// RowOptions is opt with every option that cannot change what row asks
// put back to its default ("", false). The defaults hash as they did
// before options were judged per row, so a journal written with default
// options keeps its keys.
func RowOptions(row formats.Row, opt ParseOptions) ParseOptions {
	has := func(col string) bool {
		f, ok := row.Fields[col]
		return ok && (f.List != nil || strings.TrimSpace(f.Value) != "")
	}
	action := cmp.Or(opt.DefaultAction, Upsert)
	if has("action") {
		action = Action(strings.ToLower(strings.TrimSpace(row.Fields["action"].Value)))
		opt.DefaultAction = ""
	}
	if !has("emails") && !has("msisdns") && !has("external_ids") && !has("email") && !has("external_id") {
		opt.ReplaceLists = false
	}
	if !has("email") && !has("external_id") {
		opt.MatchBy = ""
	}
	if !has("external_ids") && !has("external_id") {
		opt.AuthProvider = ""
	}
	// A row that gives its password, or whose action never takes one, is
	// not changed by --generate-passwords. An unknown action fails
	// validation; its key only needs to be stable.
	if sp := lookup(action); has("password") || sp == nil || !sp.generates {
		opt.GeneratePasswords = false
	}
	if !nationalNumbers(row.Fields["msisdns"]) {
		opt.PhoneRegion = ""
	}
	return opt
}

// nationalNumbers reports whether a msisdns cell holds a number that only
// a phone region can read (see canonicalMsisdn).
func nationalNumbers(f formats.Field) bool {
	vals := f.List
	if vals == nil {
		vals = strings.Split(f.Value, ";")
	}
	for _, v := range vals {
		v = strings.TrimSpace(v)
		switch {
		case v == "", strings.HasPrefix(v, "+"), strings.HasPrefix(v, "00"), exponentRE.MatchString(v),
			allDigits(v) && v[0] != '0':
			continue
		}
		return true
	}
	return false
}

// LegacyRowKey is the key as journals written before RowOptions hold it:
// every option given enters the key of every row. A resume of such a
// journal looks a row up by both keys, so that no row it finished is sent
// again after an upgrade.
func LegacyRowKey(row formats.Row, opt ParseOptions) string {
	// One buffer hashed in one call: this runs for every row of a resume.
	var stack [512]byte
	b := stack[:0]
	// Defaults spelt out or left empty mean the same.
	action, matchBy := cmp.Or(opt.DefaultAction, Upsert), cmp.Or(opt.MatchBy, "user_id")
	b = append(b, action...)
	b = append(b, 0)
	b = strconv.AppendBool(b, opt.ReplaceLists)
	b = append(b, 0)
	b = append(b, matchBy...)
	b = append(b, 0)
	b = append(b, opt.AuthProvider...)
	b = append(b, 0)
	b = strconv.AppendBool(b, opt.GeneratePasswords)
	b = append(b, 0)
	b = append(b, opt.ServerName...)
	b = append(b, 0)
	// Added later: only a given region enters the key, so rows read
	// without one keep the keys journals already hold.
	if opt.PhoneRegion != "" {
		b = append(b, "phone_region="...)
		b = append(b, strings.ToUpper(opt.PhoneRegion)...)
		b = append(b, 0)
	}
	// Added later, the same way: a status column's values read through
	// --action-value mean what the mapping says.
	for _, v := range slices.Sorted(maps.Keys(opt.ActionValues)) {
		b = append(b, "action_value="...)
		b = append(b, formats.Key(v)...)
		b = append(b, '=')
		b = append(b, opt.ActionValues[v]...)
		b = append(b, 0)
	}
	var nameStack [24]string
	names := nameStack[:0]
	for name := range row.Fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := row.Fields[name]
		b = append(b, name...)
		b = append(b, 0)
		switch {
		case name == "password" && f.Value != "generate":
			b = append(b, "set"...)
		case f.List != nil:
			for i, v := range f.List {
				if i > 0 {
					b = append(b, 1)
				}
				b = append(b, v...)
			}
		default:
			b = append(b, f.Value...)
		}
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// claimer is a payload that gives its user addresses or external ids.
type claimer interface {
	claims(f func(column, what string))
}

// Claims calls f for every email, msisdn and external id the row gives its
// user, with its column: no two users may be given the same one.
func (j *Job) Claims(f func(column, what string)) {
	if c, ok := j.payload.(claimer); ok {
		c.claims(f)
	}
}

// Providers calls f with the identity provider of each external id the row
// gives its user, for a check against the providers the server offers.
// remove-external-ids rows give none: removing a mapping of a provider the
// server no longer lists is how its leftovers are cleaned up, and a
// mistyped one removes nothing (plan shows the row unchanged).
func (j *Job) Providers(f func(provider string)) {
	var ids []synapse.ExternalID
	switch pl := j.payload.(type) {
	case *profile:
		ids = pl.ExternalIDs
	case *idList:
		if j.Action != RemoveExternalIDs {
			ids = pl.ids
		}
	}
	for _, x := range ids {
		f(x.AuthProvider)
	}
}
