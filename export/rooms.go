package export

import (
	"context"
	"io"

	"github.com/synbatch/synbatch/synapse"
)

// roomColumns are the columns of `export rooms`: the room list's fields,
// then the block status; roomMembersColumn joins them with --members.
var roomColumns = []string{"room_id", "name", "canonical_alias", "joined_members", "joined_local_members", "creator",
	"version", "encryption", "federatable", "public", "join_rules", "guest_access", "history_visibility",
	"state_events", "room_type", "blocked", "blocked_by"}

const roomMembersColumn = "members"

// RoomsConfig is one `export rooms` run.
type RoomsConfig struct {
	Out            string // .csv, .tsv, .xlsx, .ods or .jsonl; "-" writes Format to Stdout
	Format         string // csv or jsonl, for "-"
	Stdout         io.Writer
	Filter         synapse.RoomFilter
	Members        bool // add each room's joined members
	Concurrency    int  // requests in flight; 0 adapts (inFlight) up to MaxConcurrency
	MaxConcurrency int
	PageSize       int         // rooms per list request; 0 means 250
	Progress       func(n int) // called as rooms are read; may be nil
}

// RoomsResult says what an export did.
type RoomsResult struct {
	Rooms int
}

// roomRecord is one exported room.
type roomRecord struct {
	info      synapse.RoomInfo
	blocked   bool
	blockedBy string
	members   []string
	gone      bool // deleted between the list and its details
}

func (r *roomRecord) values(withMembers bool) []any {
	str := func(s *string) any {
		if s == nil || *s == "" {
			return nil
		}
		return *s
	}
	by := any(nil)
	if r.blockedBy != "" {
		by = r.blockedBy
	}
	i := r.info
	v := []any{i.RoomID, str(i.Name), str(i.CanonicalAlias), i.JoinedMembers, i.JoinedLocalMembers, str(i.Creator),
		str(i.Version), str(i.Encryption), bool(i.Federatable), bool(i.Public), str(i.JoinRules), str(i.GuestAccess),
		str(i.HistoryVisibility), i.StateEvents, str(i.RoomType), r.blocked, by}
	if withMembers {
		v = append(v, r.members)
	}
	return v
}

// Rooms pages through the room list (ordered by name), reads each room's
// block status (and with Members its members) through a worker pool, and
// writes the table in the list's order. The list pages by offset: a room
// seen twice is written once, and one deleted meanwhile is left out.
func Rooms(ctx context.Context, c *synapse.Client, cfg RoomsConfig) (RoomsResult, error) {
	var res RoomsResult
	pageSize := cfg.PageSize
	if pageSize <= 0 {
		pageSize = 250
	}
	var recs []*roomRecord
	c, workers := inFlight(c, cfg.Concurrency, cfg.MaxConcurrency)
	p := &pager[synapse.RoomInfo]{what: "rooms", id: func(info synapse.RoomInfo) string { return info.RoomID },
		workers: workers,
		list: func(ctx context.Context, from string) ([]synapse.RoomInfo, string, error) {
			page, next, _, err := c.ListRooms(ctx, cfg.Filter, from, pageSize)
			return page, next, err
		}}
	err := p.run(ctx, func(info synapse.RoomInfo) pageJob {
		rec := &roomRecord{info: info}
		recs = append(recs, rec)
		return pageJob{fetch: func(ctx context.Context) error {
			if err := roomDetails(ctx, c, rec, cfg.Members); err != nil {
				return err
			}
			if cfg.Progress != nil {
				cfg.Progress(1)
			}
			return nil
		}}
	})
	if err != nil {
		return res, err
	}
	cols := roomColumns
	if cfg.Members {
		cols = append(cols[:len(cols):len(cols)], roomMembersColumn)
	}
	err = tableOut{cfg.Out, cfg.Format, cfg.Stdout}.write(cols, func(write func([]any) error) error {
		for _, r := range recs {
			if r.gone {
				continue
			}
			if err := write(r.values(cfg.Members)); err != nil {
				return err
			}
			res.Rooms++
		}
		return nil
	})
	return res, err
}

// roomDetails reads what the room list leaves out.
func roomDetails(ctx context.Context, c *synapse.Client, rec *roomRecord, members bool) error {
	err := listRetry(ctx, func() error {
		var err error
		rec.blocked, rec.blockedBy, err = c.RoomBlock(ctx, rec.info.RoomID)
		return err
	})
	if err != nil || !members {
		return err
	}
	err = listRetry(ctx, func() error {
		var err error
		rec.members, err = c.RoomMembers(ctx, rec.info.RoomID)
		return err
	})
	if synapse.IsNotFound(err) {
		rec.gone = true
		return nil
	}
	return err
}
