package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/synbatch/synbatch/mas"
	"github.com/synbatch/synbatch/synapse"

	"github.com/synbatch/synbatch/internal/nofollow"
)

// UserColumns are the columns of `export users`: the manifest's columns,
// then read-only ones that apply accepts and ignores. A table (CSV, TSV,
// XLSX) shows creation_ts also as a date (created) and when the user was
// last seen (last_seen), in ISO 8601, so an inactive-user report is one
// sort away; JSONL, read by programs, keeps Synapse's numbers.
var (
	userColumns = []string{"user_id", "displayname", "avatar_url", "admin", "user_type", "emails", "msisdns",
		"external_ids", "deactivated", "locked", "shadow_banned", "erased", "is_guest", "creation_ts"}
	tableColumns = append(slices.Clip(userColumns), "created", "last_seen")
	jsonlColumns = append(slices.Clip(userColumns), "last_seen_ts")
)

// UserRecord is one exported account, as staged between pages and files.
type UserRecord struct {
	UserID       string   `json:"user_id"`
	Displayname  string   `json:"displayname,omitempty"`
	AvatarURL    string   `json:"avatar_url,omitempty"`
	Admin        bool     `json:"admin"`
	UserType     string   `json:"user_type,omitempty"`
	Emails       []string `json:"emails,omitempty"`
	Msisdns      []string `json:"msisdns,omitempty"`
	ExternalIDs  []string `json:"external_ids,omitempty"`
	Deactivated  bool     `json:"deactivated"`
	Locked       bool     `json:"locked"`
	ShadowBanned bool     `json:"shadow_banned"`
	Erased       bool     `json:"erased"`
	IsGuest      bool     `json:"is_guest"`
	CreationTS   int64    `json:"creation_ts"`            // seconds, as the user's own record gives it
	LastSeenTS   int64    `json:"last_seen_ts,omitempty"` // ms, from the list (Synapse 1.160); 0 when never seen
}

func (u *UserRecord) values(jsonl bool) []any {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	v := []any{u.UserID, str(u.Displayname), str(u.AvatarURL), u.Admin, str(u.UserType), u.Emails, u.Msisdns,
		u.ExternalIDs, u.Deactivated, u.Locked, u.ShadowBanned, u.Erased, u.IsGuest, u.CreationTS}
	var seen any
	if jsonl {
		if u.LastSeenTS > 0 {
			seen = u.LastSeenTS
		}
		return append(v, seen)
	}
	var created any
	if u.CreationTS > 0 {
		created = time.Unix(u.CreationTS, 0).UTC()
	}
	if u.LastSeenTS > 0 {
		seen = time.UnixMilli(u.LastSeenTS).UTC().Truncate(time.Second)
	}
	return append(v, created, seen)
}

// UsersConfig is one `export users` run.
type UsersConfig struct {
	Out            string // .csv, .tsv, .xlsx, .ods or .jsonl; "-" writes Format to Stdout
	Format         string // csv or jsonl, for "-"
	Stdout         io.Writer
	Filter         synapse.ListFilter
	Concurrency    int // requests in flight; 0 adapts (inFlight) up to MaxConcurrency
	MaxConcurrency int
	PageSize       int         // users per list request; 0 means 250
	Progress       func(n int) // called as users are fetched; may be nil
	// MAS, when the server's accounts live there, is where users are listed
	// (by cursor) and their status, admin flag, emails and links read;
	// Synapse gives their profiles.
	MAS *mas.Client
}

// UsersResult says what an export did.
type UsersResult struct {
	Users   int // users in the output
	Fetched int // fetched by this run (the rest came from an interrupted one)
}

// Users pages through the user list, fetches each user's threepids and
// external ids through a worker pool, and writes the table. Fetched users
// are staged in OUT.partial.jsonl as they come, so an interrupted export
// resumes without fetching them again; the output appears, whole, at the end.
func Users(ctx context.Context, c *synapse.Client, cfg UsersConfig) (UsersResult, error) {
	var res UsersResult
	st, err := openStage(cfg.Out, cfg.Progress)
	if err != nil {
		return res, err
	}
	defer st.cleanup()
	c, workers := inFlight(c, cfg.Concurrency, cfg.MaxConcurrency)
	var ml *masLister
	if cfg.MAS != nil {
		ml = &masLister{m: cfg.MAS, c: c, f: cfg.Filter, users: map[string]*mas.User{}}
	}
	werr := userPager(c, ml, cfg, st.done, workers).run(ctx, func(lu synapse.ListedUser) pageJob {
		var rec *UserRecord
		return pageJob{
			fetch: func(ctx context.Context) error {
				var err error
				if ml != nil {
					rec, err = ml.fetch(ctx, lu)
				} else {
					rec, err = fetchUser(ctx, c, lu)
				}
				if synapse.IsNotFound(err) {
					rec = nil // deleted since the list was read
					return nil
				}
				return err
			},
			keep: func() error { return st.write(rec) },
		}
	})
	cerr := st.f.Close()
	res.Fetched = st.fetched
	if werr != nil {
		return res, werr
	}
	if cerr != nil {
		return res, fmt.Errorf("staging file: %w", cerr)
	}
	n, err := writeUsers(st.path, cfg)
	res.Users = n
	if err != nil {
		return res, err
	}
	if cfg.Out != "-" {
		if err := nofollow.Remove(st.path); err != nil {
			return res, fmt.Errorf("remove staging file: %w", err)
		}
	}
	return res, nil
}

// userPager pages through Synapse's user list, or MAS's when ml is set;
// done holds the users an interrupted run staged.
func userPager(c *synapse.Client, ml *masLister, cfg UsersConfig, done map[string]bool, workers int) *pager[synapse.ListedUser] {
	pageSize := cfg.PageSize
	if pageSize <= 0 {
		pageSize = 250
	}
	return &pager[synapse.ListedUser]{what: "users", id: func(lu synapse.ListedUser) string { return lu.Name },
		seen: done, emptyPagesGoOn: ml != nil, workers: workers,
		list: func(ctx context.Context, from string) ([]synapse.ListedUser, string, error) {
			if ml != nil {
				return ml.page(ctx, from, pageSize)
			}
			return c.ListUsers(ctx, cfg.Filter, from, pageSize)
		}}
}

// stage is the staging file of `export users`: OUT.partial.jsonl, or for
// stdout a temporary file, that the workers append fetched users to.
type stage struct {
	path     string
	f        *os.File
	done     map[string]bool // users an interrupted run staged
	progress func(n int)     // may be nil
	cleanup  func()          // removes a temporary staging file

	mu      sync.Mutex
	fetched int // users staged by this run
}

// openStage opens the staging file of an export to out for appending,
// and reads which users it already holds.
func openStage(out string, progress func(n int)) (*stage, error) {
	st := &stage{path: out + ".partial.jsonl", progress: progress, cleanup: func() {}}
	if out == "-" {
		f, err := nofollow.CreateTemp("", "synbatch-export-*.jsonl")
		if err != nil {
			return nil, fmt.Errorf("staging file: %w", err)
		}
		f.Close()
		st.path = f.Name()
		st.cleanup = func() { nofollow.Remove(st.path) }
	}
	var err error
	if st.done, err = readStage(st.path); err != nil {
		st.cleanup()
		return nil, err
	}
	if st.f, err = nofollow.OpenFile(st.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		st.cleanup()
		return nil, fmt.Errorf("staging file: %w", err)
	}
	return st, nil
}

// write appends one fetched user (nil: none, it was deleted meanwhile).
func (st *stage) write(r *UserRecord) error {
	if r == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, err := st.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write staging file: %w", err)
	}
	st.fetched++
	if st.progress != nil {
		st.progress(1)
	}
	return nil
}

func fetchUser(ctx context.Context, c *synapse.Client, lu synapse.ListedUser) (*UserRecord, error) {
	var u *synapse.User
	err := listRetry(ctx, func() error {
		var err error
		u, err = c.GetUser(ctx, lu.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &UserRecord{UserID: u.Name, Admin: bool(u.Admin), Deactivated: bool(u.Deactivated), Locked: bool(u.Locked),
		ShadowBanned: bool(lu.ShadowBan) || bool(u.ShadowBan), Erased: bool(u.Erased), IsGuest: bool(u.IsGuest), CreationTS: u.CreationTS}
	if lu.LastSeenTS != nil {
		r.LastSeenTS = *lu.LastSeenTS
	}
	if u.Displayname != nil {
		r.Displayname = *u.Displayname
	}
	if u.AvatarURL != nil {
		r.AvatarURL = *u.AvatarURL
	}
	if u.UserType != nil {
		r.UserType = *u.UserType
	}
	for _, t := range u.Threepids {
		switch t.Medium {
		case "email":
			r.Emails = append(r.Emails, t.Address)
		case "msisdn":
			r.Msisdns = append(r.Msisdns, t.Address)
		}
	}
	for _, x := range u.ExternalIDs {
		r.ExternalIDs = append(r.ExternalIDs, x.AuthProvider+":"+x.ExternalID)
	}
	return r, nil
}

// readStage returns the users an interrupted export already fetched. A last
// line torn by a kill is dropped (that user is fetched again).
func readStage(path string) (map[string]bool, error) {
	done := map[string]bool{}
	f, err := nofollow.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, fmt.Errorf("staging file: %w", err)
	}
	defer f.Close()
	recs, err := stagedRecords(f, path)
	for _, r := range recs {
		done[r.UserID] = true
	}
	return done, err
}

func stagedRecords(r io.Reader, path string) ([]UserRecord, error) {
	var out []UserRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec UserRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			continue // a torn line from a kill: that user is fetched again
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// writeUsers writes the staged users, sorted by id and without repeats, in
// the output's format.
func writeUsers(stage string, cfg UsersConfig) (int, error) {
	f, err := nofollow.Open(stage)
	if err != nil {
		return 0, fmt.Errorf("staging file: %w", err)
	}
	recs, err := stagedRecords(f, stage)
	f.Close()
	if err != nil {
		return 0, err
	}
	sort.SliceStable(recs, func(a, b int) bool { return recs[a].UserID < recs[b].UserID })
	jsonl := strings.EqualFold(cfg.Format, "jsonl")
	if cfg.Out != "-" {
		ext := strings.ToLower(filepath.Ext(cfg.Out))
		jsonl = ext == ".jsonl" || ext == ".ndjson"
	}
	cols := tableColumns
	if jsonl {
		cols = jsonlColumns
	}
	n := 0
	err = tableOut{cfg.Out, cfg.Format, cfg.Stdout}.write(cols, func(write func([]any) error) error {
		for i := range recs {
			if i > 0 && recs[i].UserID == recs[i-1].UserID {
				continue
			}
			if err := write(recs[i].values(jsonl)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// listRetry runs f until it succeeds, fails for good, or a few tries of a
// retryable error (429, 5xx, a lost connection) have passed.
func listRetry(ctx context.Context, f func() error) error {
	_, err := synapse.Retry{Attempts: 5, Base: 250 * time.Millisecond}.Do(ctx, func(context.Context) error { return f() })
	return err
}
