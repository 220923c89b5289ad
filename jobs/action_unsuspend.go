package jobs

// Unsuspend lifts a suspension.
const Unsuspend Action = "unsuspend"

var unsuspendAction = &Spec{Name: Unsuspend, Kind: UserRow, plan: withUser(false, planSuspend(false))}
