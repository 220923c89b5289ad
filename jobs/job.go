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
	"slices"
	"strconv"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/synapse"
)

// Action is what a row asks for.
type Action string

// Actions of user rows.
const (
	Create            Action = "create" // create the account; what happens when it exists is OnExists
	Update            Action = "update" // change only the given columns; the account must exist
	Upsert            Action = "upsert" // create or update
	ResetPassword     Action = "reset-password"
	SetExternalIDs    Action = "set-external-ids"
	RemoveExternalIDs Action = "remove-external-ids"
	DeleteDevices     Action = "delete-devices"
	Deactivate        Action = "deactivate"
	Reactivate        Action = "reactivate"
	JoinRooms         Action = "join-rooms"
	ShadowBan         Action = "shadow-ban"
	UnshadowBan       Action = "unshadow-ban"
	Lock              Action = "lock"
	Unlock            Action = "unlock"
	SetRatelimit      Action = "set-ratelimit"
	DeleteRatelimit   Action = "delete-ratelimit"
)

// Actions of room rows: room_id names the room; user_id, when the action
// reads it, names the users it acts for.
const (
	Block         Action = "block"
	Unblock       Action = "unblock"
	DeleteRoom    Action = "delete-room"
	MakeRoomAdmin Action = "make-room-admin"
	Join          Action = "join"
	PurgeHistory  Action = "purge-history"
)

// Actions of media rows: user_id names the user whose uploads they act on.
const (
	QuarantineMedia Action = "quarantine-media"
	DeleteMedia     Action = "delete-media"
)

// Room reports whether rows of the action are about a room, not a user.
func (a Action) Room() bool {
	switch a {
	case Block, Unblock, DeleteRoom, MakeRoomAdmin, Join, PurgeHistory:
		return true
	}
	return false
}

// actionColumns lists, for each action, the columns it reads besides the
// ones every row may have. A value in any other column is an error, so a row
// never silently ignores what an admin wrote.
var actionColumns = map[Action][]string{
	Create:            userFields,
	Update:            userFields,
	Upsert:            userFields,
	ResetPassword:     {"password", "logout_devices"},
	SetExternalIDs:    {"external_ids"},
	RemoveExternalIDs: {"external_ids"},
	DeleteDevices:     {"devices"},
	Deactivate:        {"erase"},
	Reactivate:        {"password"},
	JoinRooms:         {"rooms"},
	ShadowBan:         nil,
	UnshadowBan:       nil,
	Lock:              nil,
	Unlock:            nil,
	SetRatelimit:      {"messages_per_second", "burst_count"},
	DeleteRatelimit:   nil,
	Block:             nil,
	Unblock:           nil,
	DeleteRoom:        {"new_room_user_id", "room_name", "message", "block", "purge", "force_purge"},
	MakeRoomAdmin:     {"user_id"},
	Join:              {"user_id"},
	PurgeHistory:      {"before", "delete_local_events"},
	QuarantineMedia:   nil,
	DeleteMedia:       {"before", "min_size"},
}

var userFields = []string{"displayname", "avatar_url", "password", "user_type", "admin", "logout_devices",
	"emails", "msisdns", "external_ids", "clear", "rooms"}

// commonColumns may appear on any row: who the row is about, and what it does.
var commonColumns = []string{"user_id", "action", "email", "external_id", "room_id"}

// Destructive reports whether an action takes something from users: apply
// asks before the first such write.
func (a Action) Destructive() bool {
	switch a {
	case Deactivate, DeleteDevices, ResetPassword, RemoveExternalIDs,
		DeleteRoom, PurgeHistory, DeleteMedia, QuarantineMedia:
		return true
	}
	return false
}

// Actions lists every action in the order of the docs.
func Actions() []Action {
	return []Action{Create, Update, Upsert, ResetPassword, SetExternalIDs, RemoveExternalIDs, DeleteDevices,
		Deactivate, Reactivate, JoinRooms, ShadowBan, UnshadowBan, Lock, Unlock, SetRatelimit, DeleteRatelimit,
		Block, Unblock, DeleteRoom, MakeRoomAdmin, Join, PurgeHistory, QuarantineMedia, DeleteMedia}
}

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

// Job is one validated row.
type Job struct {
	Row    int
	Key    string // identity of the row's intent; never derived from a password
	UserID string // "" when the row names its user by Match
	Match  string // with --match-by email or external_id: the value to look up
	Action Action

	// Scalars: nil leaves the field alone; "" clears it.
	Displayname *string
	AvatarURL   *string
	UserType    *string

	Admin         *bool
	LogoutDevices *bool
	Erase         bool

	// password is kept unexported so that no encoder prints it by accident.
	// generate asks for a random one.
	password string
	generate bool

	Emails      *List
	Msisdns     *List
	ExternalIDs []synapse.ExternalID
	ReplaceIDs  bool // external ids replace the user's list
	HasIDs      bool // the row says something about external ids

	Devices    []string // device ids, or nil with AllDevices
	AllDevices bool
	Rooms      []string // room ids or aliases

	// set-ratelimit: nil keeps the user's current value.
	MessagesPerSecond, BurstCount *int64

	// Room rows. RoomID is a room id or an alias (resolved when planned);
	// Members are the users of make-room-admin (one) and join.
	RoomID  string
	Members []string
	// delete-room: nil leaves Synapse's default (no block, purge).
	NewRoomUserID     string
	RoomName, Message *string
	BlockRoom         *bool
	Purge, ForcePurge *bool
	// purge-history and delete-media: unix ms, 0 for none.
	Before            int64
	DeleteLocalEvents bool
	// delete-media: only files of at least this many bytes (nil: any).
	MinSize *int64
}

// Identity names what the row is about: its user id, or the value it
// matches its user by, or for a room row its room. Shards and duplicate
// checks go by it.
func (j *Job) Identity() string {
	if j.Action.Room() {
		return "room:" + j.RoomID
	}
	if j.UserID != "" {
		return j.UserID
	}
	return "match:" + j.Match
}

// Subject is what the row acts on, for journals and plans: its room for a
// room row, else its user ("" until a matched user is resolved).
func (j *Job) Subject() string {
	if j.Action.Room() {
		return j.RoomID
	}
	return j.UserID
}

// Generates reports whether the row may generate a password.
func (j *Job) Generates() bool { return j.generate }

// SetsPassword reports whether the row would set an existing account's
// password (create and upsert rows set one only on a new account).
func (j *Job) SetsPassword() bool {
	return j.HasPassword() && (j.Action == Update || j.Action == ResetPassword || j.Action == Reactivate)
}

// Intent is what the row asks for, to tell a harmless repeat from a
// disagreement: its key plus the password the key leaves out. It is only
// compared in memory, never written anywhere.
func (j *Job) Intent() string { return j.Key + "\x00" + j.password }

// HasPassword reports whether the row sets a password (given or generated).
func (j *Job) HasPassword() bool { return j.password != "" || j.generate }

// RowKey is a row's identity: a hash of its cells, with the password's
// value left out (only whether it is given or generated counts), and of the
// options that give the cells their meaning. A resumed run knows a row by
// it whatever the row's position, and can skip a finished row without
// parsing it.
func RowKey(row formats.Row, opt ParseOptions) string {
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
