package jobs

// registry lists every action in the order of the docs. A new action is a
// file of its own with its Spec, and one line here.
var registry = []*Spec{
	createAction,
	updateAction,
	upsertAction,
	resetPasswordAction,
	setExternalIDsAction,
	removeExternalIDsAction,
	deleteDevicesAction,
	deactivateAction,
	redactAction,
	noticeAction,
	registrationTokenAction,
	reactivateAction,
	joinRoomsAction,
	shadowBanAction,
	unshadowBanAction,
	lockAction,
	unlockAction,
	suspendAction,
	unsuspendAction,
	setRatelimitAction,
	deleteRatelimitAction,
	blockAction,
	unblockAction,
	deleteRoomAction,
	makeRoomAdminAction,
	joinAction,
	purgeHistoryAction,
	quarantineMediaAction,
	deleteMediaAction,
}

// specByName is built once from registry and only read.
var specByName = index(registry)
