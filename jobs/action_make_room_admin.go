package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/synapse"
)

// MakeRoomAdmin makes one user (user_id) admin of the room, as Synapse's
// make_room_admin does.
const MakeRoomAdmin Action = "make-room-admin"

var makeRoomAdminAction = &Spec{Name: MakeRoomAdmin, Kind: RoomRow, Columns: []string{"user_id"},
	parse: parseMembers(true), plan: inRoom(planMakeRoomAdmin)}

// roomPower is what make_room_admin reads of a room.
type roomPower struct {
	id           string
	create       synapse.StateEvent
	version      string
	creators     []string // the creator and additional_creators
	creatorPower bool     // creators stand above power levels (MSC4289)
	levels       powerLevels
	hasLevels    bool // the room has m.room.power_levels
	members      []string
	public       bool
}

// planMakeRoomAdmin works out what Synapse's make_room_admin would do: give
// the user the power level of the room's most powerful joined local user
// (100 if that is a creator of a room version where creators stand above
// power levels), and invite them unless they are in the room or it is
// public. It is unchanged when the user already has that much power and
// is joined or invited (or the room is public).
func planMakeRoomAdmin(ctx context.Context, j *Job, env Env, _ *State, p *Plan) error {
	c, id := env.Client, p.UserID
	user := j.payload.(members)[0]
	r, err := knownRoom(ctx, c, id)
	if err != nil {
		return err
	}
	if err := usable(ctx, c, user); err != nil {
		return err
	}
	rp, err := readRoomPower(ctx, c, id)
	if err != nil {
		return err
	}
	current, has := level(rp.levels.Users[user])
	if !has {
		current, _ = level(rp.levels.UsersDefault)
	}
	powerful, target, err := rp.target(user)
	if err != nil {
		return err
	}
	inRoom := slices.Contains(rp.members, user) || rp.public
	if !inRoom {
		if inRoom, err = invited(ctx, c, id, user); err != nil {
			return err
		}
	}
	if (powerful || current >= target) && inRoom {
		p.Reason = fmt.Sprintf("%s already has power level %d", user, current)
		if powerful {
			p.Reason = user + " is a creator of the room"
		}
		return nil
	}
	what := fmt.Sprintf("%s made room admin (power level %d → %d)", user, current, target)
	if !inRoom {
		what += ", invited"
	}
	p.add("power_levels", FieldChange{Field: "room", Old: roomText(r), New: what}, func(ctx context.Context) (int, error) {
		return 200, c.MakeRoomAdmin(ctx, id, user)
	})
	return nil
}

// readRoomPower reads the state make_room_admin decides by.
func readRoomPower(ctx context.Context, c *synapse.Client, id string) (*roomPower, error) {
	state := func(typ string) ([]synapse.StateEvent, error) {
		evs, err := c.RoomState(ctx, id, typ)
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", typ, id, err)
		}
		return evs, nil
	}
	creates, err := state("m.room.create")
	if err != nil {
		return nil, err
	}
	if len(creates) == 0 {
		return nil, rowErr("room %s has no create event here (this server is not in the room)", id)
	}
	var create struct {
		RoomVersion        string   `json:"room_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	_ = json.Unmarshal(creates[0].Content, &create)
	rp := &roomPower{id: id, create: creates[0], version: create.RoomVersion,
		creators: append([]string{creates[0].Sender}, create.AdditionalCreators...)}
	// Room versions with MSC4289 (12, and hydra's) give creators power above any level.
	rp.creatorPower = create.RoomVersion == "12" || strings.HasPrefix(create.RoomVersion, "org.matrix.hydra")
	pls, err := state("m.room.power_levels")
	if err != nil {
		return nil, err
	}
	if len(pls) > 0 {
		rp.hasLevels = true
		_ = json.Unmarshal(pls[0].Content, &rp.levels)
	}
	rules, err := state("m.room.join_rules")
	if err != nil {
		return nil, err
	}
	if len(rules) > 0 {
		var jr struct {
			JoinRule string `json:"join_rule"`
		}
		_ = json.Unmarshal(rules[0].Content, &jr)
		rp.public = jr.JoinRule == "public"
	}
	if rp.members, err = c.RoomMembers(ctx, id); err != nil {
		return nil, fmt.Errorf("read members of %s: %w", id, err)
	}
	return rp, nil
}

// target is the power level user would get, and whether they already stand
// above levels as a creator.
func (rp *roomPower) target(user string) (powerful bool, target int64, err error) {
	_, server, _ := strings.Cut(user, ":")
	local := func(u string) bool { _, s, _ := strings.Cut(u, ":"); return s == server }
	powerful = rp.creatorPower && slices.Contains(rp.creators, user)
	if !rp.hasLevels {
		if !local(rp.create.Sender) {
			return false, 0, rowErr("no local admin user in %s: Synapse can make nobody admin there", rp.id)
		}
		return powerful || user == rp.create.Sender, 100, nil
	}
	// The joined local user with the most power, as Synapse picks it:
	// creators (in creator-power versions) first, then by level.
	var candidates []string
	for u := range rp.levels.Users {
		if local(u) {
			candidates = append(candidates, u)
		}
	}
	slices.SortFunc(candidates, func(a, b string) int {
		la, _ := level(rp.levels.Users[a])
		lb, _ := level(rp.levels.Users[b])
		return cmp.Or(cmp.Compare(lb, la), strings.Compare(a, b))
	})
	if rp.creatorPower {
		var cs []string
		for _, u := range rp.creators {
			if local(u) {
				cs = append(cs, u)
			}
		}
		slices.Reverse(cs)
		candidates = append(cs, candidates...)
	}
	i := slices.IndexFunc(candidates, func(u string) bool { return slices.Contains(rp.members, u) })
	if i < 0 {
		return false, 0, rowErr("no local user with power is joined to %s: Synapse can make nobody admin there", rp.id)
	}
	target = 100
	if l, ok := level(rp.levels.Users[candidates[i]]); ok {
		target = l
	}
	return powerful, target, nil
}

// invited reports whether user has a pending invite to the room.
func invited(ctx context.Context, c *synapse.Client, id, user string) (bool, error) {
	mem, err := c.RoomState(ctx, id, "m.room.member")
	if err != nil {
		return false, fmt.Errorf("read m.room.member of %s: %w", id, err)
	}
	in := false
	for _, e := range mem {
		var m struct {
			Membership string `json:"membership"`
		}
		if e.StateKey == user && json.Unmarshal(e.Content, &m) == nil {
			in = m.Membership == "invite"
		}
	}
	return in, nil
}
