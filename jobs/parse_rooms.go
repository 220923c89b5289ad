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

// room reads how a room row names its room (room_id). On room rows
// user_id is never the row's subject: the actions that read it (as the
// users they act for) list it among their columns.
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
	if slices.Contains(j.spec.Columns, "user_id") {
		return
	}
	if f, ok := p.row.Fields["user_id"]; ok && len(p.list(f)) > 0 {
		p.bad("user_id", "action %s does not use this column: empty it, or use another action", j.Action)
	}
}

// members reads the users a room row acts for (user_id), each once; one
// says the action takes a single user.
func (p *parser) members(j *Job, one bool) []string {
	var users, out []string
	if f, ok := p.row.Fields["user_id"]; ok {
		users = p.list(f)
	}
	if len(users) == 0 {
		p.bad("user_id", "missing: %s needs the user to act for (user_id)", j.Action)
	}
	if one && len(users) > 1 {
		p.bad("user_id", "%s takes one user: give each user a row of their own", j.Action)
	}
	for _, u := range users {
		id, err := NormaliseUserID(u, p.opt.ServerName)
		if err != nil {
			p.bad("user_id", "%v", err)
		} else if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// before reads the before column as unix ms (0 when empty).
func (p *parser) before() int64 { return p.pointInTime("before") }

// pointInTime reads a column holding a time as unix ms (0 when empty).
func (p *parser) pointInTime(col string) int64 {
	v, ok := p.scalar(col)
	if !ok {
		return 0
	}
	ms, err := ParseBefore(v)
	if err != nil {
		p.bad(col, "%v", err)
	}
	return ms
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
