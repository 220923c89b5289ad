package jobs

// Unblock lifts a room's block.
const Unblock Action = "unblock"

var unblockAction = &Spec{Name: Unblock, Kind: RoomRow, plan: inRoom(planBlock(false))}
