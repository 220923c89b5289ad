package jobs

// Create creates the account; what happens when it exists is --on-exists.
const Create Action = "create"

var createAction = &Spec{Name: Create, Kind: UserRow, Columns: profileColumns,
	creates: true, generates: true, parse: parseProfile, plan: planProfile}
