package jobs

// Unlock unlocks a locked account.
const Unlock Action = "unlock"

var unlockAction = &Spec{Name: Unlock, Kind: UserRow, plan: withUser(false, planLock(false))}
