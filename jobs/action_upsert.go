package jobs

// Upsert creates the account or updates it; a password is only the initial
// one of a new account.
const Upsert Action = "upsert"

var upsertAction = &Spec{Name: Upsert, Kind: UserRow, Columns: profileColumns,
	creates: true, generates: true, parse: parseProfile, plan: planProfile}
