// Package jobs turns a manifest row into a job and runs it against Synapse:
// it validates the row, reads the account, works out the smallest change that
// makes the account match the row, guards against Synapse's silent hazards,
// and sends that change. A row the account already matches sends no write.
package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/synbatch/synbatch/synapse"
)

// Action is what a row asks for.
type Action string

// Actions of user rows.
const (
	Create Action = "create" // create the account; what happens when it exists is OnExists
	Update Action = "update" // change only the given columns; the account must exist
	Upsert Action = "upsert" // create or update
)

// Actions lists every action a row may name.
var actionNames = []Action{Create, Update, Upsert}

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
	UserID string
	Action Action

	// Scalars: nil leaves the field alone; "" clears it.
	Displayname *string
	AvatarURL   *string
	UserType    *string

	Admin         *bool
	LogoutDevices *bool

	// password is kept unexported so that no encoder prints it by accident.
	password string

	Emails      *List
	Msisdns     *List
	ExternalIDs []synapse.ExternalID
	ReplaceIDs  bool // external ids replace the user's list
	HasIDs      bool // the row says something about external ids
}

// HasPassword reports whether the row carries a password.
func (j *Job) HasPassword() bool { return j.password != "" }

// computeKey hashes everything the row asks for except the password itself,
// so a resumed run knows the row by its content, whatever its position.
func (j *Job) computeKey() {
	type ids struct {
		P, I string
	}
	v := struct {
		U, A     string
		D, Av, T *string
		Ad, L    *bool
		Pw       bool
		E, M     *List
		X        []ids
		XR, XH   bool
	}{U: j.UserID, A: string(j.Action), D: j.Displayname, Av: j.AvatarURL, T: j.UserType,
		Ad: j.Admin, L: j.LogoutDevices, Pw: j.password != "", E: j.Emails, M: j.Msisdns, XR: j.ReplaceIDs, XH: j.HasIDs}
	for _, x := range j.ExternalIDs {
		v.X = append(v.X, ids{x.AuthProvider, x.ExternalID})
	}
	sort.Slice(v.X, func(a, b int) bool { return v.X[a].P+"\x00"+v.X[a].I < v.X[b].P+"\x00"+v.X[b].I })
	b, _ := json.Marshal(v) // a struct of strings, bools and slices always encodes
	sum := sha256.Sum256(b)
	j.Key = hex.EncodeToString(sum[:16])
}
