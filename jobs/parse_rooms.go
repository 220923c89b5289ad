package jobs

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synbatch/synbatch/formats"
)

// room reads how a room row names its room (room_id) and, for
// make-room-admin and join, the users it acts for (user_id). On room rows
// user_id is never the row's subject.
func (p *parser) room(j *Job) {
	switch v, ok := p.scalar("room_id"); {
	case !ok:
		p.bad("room_id", "missing: %s rows need a room_id (!id:server, or an alias #name:server)", j.Action)
	case !roomRE.MatchString(v):
		p.bad("room_id", "%s is not a room id (!id:server) or alias (#name:server)", formats.Quote(v))
	default:
		j.RoomID = v
	}
	for _, col := range []string{"email", "external_id"} {
		if _, ok := p.scalar(col); ok {
			p.bad(col, "%s rows name their room by room_id, not a user", j.Action)
		}
	}
	var users []string
	if f, ok := p.row.Fields["user_id"]; ok {
		users = p.list(f)
	}
	switch j.Action {
	case MakeRoomAdmin, Join:
		if len(users) == 0 {
			p.bad("user_id", "missing: %s needs the user to act for (user_id)", j.Action)
		}
		if j.Action == MakeRoomAdmin && len(users) > 1 {
			p.bad("user_id", "make-room-admin takes one user: give each user a row of their own")
		}
		for _, u := range users {
			id, err := NormaliseUserID(u, p.opt.ServerName)
			if err != nil {
				p.bad("user_id", "%v", err)
			} else if !slices.Contains(j.Members, id) {
				j.Members = append(j.Members, id)
			}
		}
	default:
		if len(users) > 0 {
			p.bad("user_id", "action %s does not use this column: empty it, or use another action", j.Action)
		}
	}
}

// roomColumns reads the columns of room and media rows. Which action may
// have which column is already checked.
func (p *parser) roomColumns(j *Job) {
	if v, ok := p.scalar("new_room_user_id"); ok {
		id, err := NormaliseUserID(v, p.opt.ServerName)
		if err != nil {
			p.bad("new_room_user_id", "%v", err)
		}
		j.NewRoomUserID = id
	}
	if v, ok := p.scalar("room_name"); ok {
		j.RoomName = &v
	}
	if v, ok := p.scalar("message"); ok {
		j.Message = &v
	}
	j.BlockRoom = p.boolean("block")
	j.Purge = p.boolean("purge")
	j.ForcePurge = p.boolean("force_purge")
	if j.ForcePurge != nil && *j.ForcePurge && j.Purge != nil && !*j.Purge {
		p.bad("force_purge", "force_purge needs purge (Synapse ignores it without)")
	}
	if v, ok := p.scalar("before"); ok {
		ms, err := ParseBefore(v)
		if err != nil {
			p.bad("before", "%v", err)
		}
		j.Before = ms
	}
	if b := p.boolean("delete_local_events"); b != nil {
		j.DeleteLocalEvents = *b
	}
	j.MinSize = p.count("min_size")
	if j.Action == PurgeHistory && j.Before == 0 {
		if _, given := p.scalar("before"); !given {
			p.bad("before", "purge-history needs before: a date (2026-01-31), an RFC 3339 time or a unix time in ms")
		}
	}
}

// Excel keeps dates as days since 1899-12-30; a date cell read raw arrives
// as that serial number. The last one Excel knows is 9999-12-31.
const (
	excelEpochDays = 25569 // days from 1899-12-30 to 1970-01-01
	excelMaxSerial = 2958465
)

// ParseBefore reads a point in time as unix milliseconds: a date
// (2026-01-31, midnight UTC), an RFC 3339 time, a date and time without a
// zone (UTC), a unix time in milliseconds, or a spreadsheet's date serial
// number (days since 1899-12-30, as Excel stores a date cell). A number
// that reads as seconds since 1970 is refused rather than taken for 1970.
func ParseBefore(v string) (int64, error) {
	v = strings.TrimSpace(v)
	ms, err := parseTime(v)
	if err == nil && ms < minBefore {
		return 0, fmt.Errorf("%s is before 1971: want a date (2026-01-31) or a unix time in ms", formats.Quote(v))
	}
	return ms, err
}

// minBefore is 1971-01-01 in unix ms: anything earlier is a mistake.
const minBefore = 365 * 86400_000

func parseTime(v string) (int64, error) {
	for _, layout := range []string{time.DateOnly, time.RFC3339Nano, "2006-01-02T15:04:05", time.DateTime, "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMilli(), nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n >= 1e11:
			return n, nil
		case n <= excelMaxSerial:
			return (n - excelEpochDays) * 86400_000, nil
		}
		return 0, fmt.Errorf("%s reads as seconds since 1970: give milliseconds (%d000), or a date like 2026-01-31", formats.Quote(v), n)
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f <= excelMaxSerial {
		return int64(math.Round((f - excelEpochDays) * 86400_000)), nil
	}
	return 0, fmt.Errorf("%s is not a time: want a date (2026-01-31), an RFC 3339 time (2026-01-31T12:00:00Z) or a unix time in ms", formats.Quote(v))
}
