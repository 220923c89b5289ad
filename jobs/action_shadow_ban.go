package jobs

// ShadowBan shadow-bans the user: their messages reach nobody else.
const ShadowBan Action = "shadow-ban"

var shadowBanAction = &Spec{Name: ShadowBan, Kind: UserRow, plan: withUser(false, planShadowBan(true))}
