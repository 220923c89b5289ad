package jobs

// Update changes only the given columns; the account must exist. A
// password on the row is the account's new one.
const Update Action = "update"

var updateAction = &Spec{Name: Update, Kind: UserRow, Columns: profileColumns,
	setsPassword: true, parse: parseProfile, plan: planProfile}
