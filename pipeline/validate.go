// Package pipeline runs a manifest: rows are read as a stream, validated,
// turned into jobs, fanned out to a rate-limited errgroup worker pool, and
// each result is written to the journal by a single writer. Memory does not
// grow with the manifest beyond a few bytes of bookkeeping per row.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
)

// Source names a manifest and how to read it.
type Source struct {
	Path string
	// Name is the manifest in messages and in the journal's header; ""
	// means Path. A manifest read from stdin is "-", not its buffer.
	Name  string
	Sheet string
	Parse jobs.ParseOptions
	// Shard K of Shards (0-based): only the rows whose identity hashes to
	// K are run. Shards 0 or 1 runs every row.
	Shard, Shards int
	// Names makes validation keep the user ids the rows name (--sync).
	Names bool
	// FirstRow and LastRow (--rows) bound the rows apply and plan run, by
	// their spreadsheet numbers; 0 leaves that end open. Validation still
	// reads every row: a bad row anywhere stops the run.
	FirstRow, LastRow int
}

// Label names the manifest for people: Name, else Path.
func (s Source) Label() string { return cmp.Or(s.Name, s.Path) }

// InRows reports whether row num is within --rows.
func (s Source) InRows(num int) bool {
	return num >= s.FirstRow && (s.LastRow == 0 || num <= s.LastRow)
}

// Mine reports whether a job belongs to this source's shard. The hash of
// the row's user id is the same whatever the file's format or row order.
func (s Source) Mine(j *jobs.Job) bool {
	return s.Shards <= 1 || hash(j.Identity())%uint64(s.Shards) == uint64(s.Shard)
}

// Checked is what validation learned about a manifest.
type Checked struct {
	Rows     int                 // data rows (of this shard, when sharded)
	AllRows  int                 // data rows of the whole manifest
	Problems []error             // at most MaxProblems; each a *formats.Problem
	Total    int                 // problems found, even past MaxProblems
	DupOf    map[int]int         // row -> earlier row with the same user and the same intent
	Actions  map[jobs.Action]int // rows per action
	Generate int                 // rows that may generate a password (or a token)
	Tokens   int                 // of them, rows that generate a registration token
	Bare     bool                // some user ids were bare localparts
	// Providers are the identity providers the rows' external ids name,
	// for a check against the server's (remove-external-ids rows aside).
	Providers map[string]ProviderRows
	// Ignored counts, by header, the cells that rows closing an account
	// (a leaver's deactivate row) carry and ignore: said once per column.
	Ignored map[string]IgnoredColumn
	// Named holds the user ids the rows name (with Source.Names), for
	// --sync: an account in scope that no row names is closed.
	Named map[string]bool
	// ByMatch counts the rows that name their user by --match-by.
	ByMatch int
	// IDs are the hashes of the identities of this shard's valid rows
	// within --rows: what apply's user lock holds, 8 bytes a row, kept
	// so that the lock does not read and parse the manifest again.
	IDs []uint64
	// hasIDs is set when this validation collected IDs (a journal's
	// record of a validation keeps none).
	hasIDs bool
}

// IgnoredColumn is a column that closing rows carry and ignore.
type IgnoredColumn struct {
	Rows, First int
	Actions     []jobs.Action
}

// Notes says what validation leaves aside without it being a problem: one
// line per ignored column.
func (ch *Checked) Notes() []string {
	var out []string
	for _, col := range slices.Sorted(maps.Keys(ch.Ignored)) {
		ic := ch.Ignored[col]
		var acts []string
		for _, a := range ic.Actions {
			acts = append(acts, string(a))
		}
		out = append(out, fmt.Sprintf("column %s is ignored on %d %s %s (first row %d): such a row closes the account and reads only its user",
			formats.Quote(col), ic.Rows, strings.Join(acts, "/"), plural(ic.Rows, "row", "rows"), ic.First))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// MaxProblems bounds the problems kept, so a broken million-row file does
// not fill memory; Total still counts them all.
const MaxProblems = 1000

// ErrInvalid is returned when a manifest fails validation.
var ErrInvalid = errors.New("manifest is not valid")

// claim is one row's hold on a user or an address, 16 bytes, kept in a
// slice and sorted at the end: a million rows cost tens of megabytes where
// maps cost hundreds.
type claim struct {
	what uint64 // hash of the user's identity, or of an address
	aux  uint32 // users: the row's intent; addresses: the claiming user
	row  uint32 // row number, with the column in the top two bits (addresses)
}

const rowMask = 1<<30 - 1

var claimColumns = []string{"emails", "msisdns", "external_ids"}

// Validate reads the whole manifest and reports every problem: bad cells,
// unknown columns, and rows that disagree about one user (two rows for the
// same user with different intent, or one email, msisdn or external id given
// to two users). It sends nothing anywhere.
func Validate(src Source) (*Checked, error) { return ValidateContext(context.Background(), src) }

// ValidateContext is Validate that stops when ctx ends (it looks every
// 4096 rows) and returns ctx's error.
func ValidateContext(ctx context.Context, src Source) (*Checked, error) {
	r, err := src.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	v := &validator{src: src, out: &Checked{DupOf: map[int]int{}, Actions: map[jobs.Action]int{}, Providers: map[string]ProviderRows{},
		Ignored: map[string]IgnoredColumn{}, hasIDs: true}}
	if src.Names {
		v.out.Named = map[string]bool{}
	}
	unknown := jobs.CheckColumnsWritten(src.Label(), r.Columns(), func(c string) string { return formats.Written(r, c) })
	for _, p := range unknown {
		v.add(p)
	}
	// A column the header does not name is missing from every row (an
	// unknown header may hold it): one line says so, not one a row.
	v.header, v.missing = r.Columns(), map[string]*missing{}
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var p *formats.Problem
		if errors.As(err, &p) {
			v.add(p)
			// A header problem comes before its rows, which still follow.
			if p.Row > 1 {
				v.out.Rows++
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src.Path, err)
		}
		v.row(row)
	}
	for _, col := range slices.Sorted(maps.Keys(v.missing)) {
		m := v.missing[col]
		fix := fmt.Sprintf("add a %s column", col)
		if len(unknown) > 0 {
			fix = fmt.Sprintf("if an unknown column holds it, --map 'HEADER=%s'", col)
		}
		v.add(&formats.Problem{File: src.Label(), Row: 1, Column: col,
			Msg: fmt.Sprintf("missing on %d rows (first row %d, %s): no header names it; %s", m.rows, m.first, m.msg, fix)})
	}
	v.sameUser()
	v.sharedClaims()
	// One order whatever the order of finding: a row's cells come out of
	// a map, and the problems found at the end join the others by row. An
	// admin who fixes a sheet and validates again sees the same list,
	// less what was fixed.
	slices.SortStableFunc(v.out.Problems, compareProblems)
	return v.out, nil
}

// compareProblems orders problems by file, row, column, then message; an
// error that is not a *formats.Problem (none is today) goes last.
func compareProblems(a, b error) int {
	var pa, pb *formats.Problem
	okA, okB := errors.As(a, &pa), errors.As(b, &pb)
	switch {
	case !okA || !okB:
		return cmp.Compare(boolInt(!okA), boolInt(!okB))
	}
	return cmp.Or(cmp.Compare(pa.File, pb.File), cmp.Compare(pa.Row, pb.Row), cmp.Compare(pa.Column, pb.Column), cmp.Compare(pa.Msg, pb.Msg))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Open opens the manifest with its columns named as ColumnNames says.
func (s Source) Open() (formats.Reader, error) {
	names, err := jobs.ColumnNames(s.Parse)
	if err != nil {
		return nil, err
	}
	r, err := formats.Open(s.Path, formats.Options{Sheet: s.Sheet})
	if err != nil {
		return nil, err
	}
	return formats.Rename(r, s.Label(), names), nil
}

// validator is one validation under way.
type validator struct {
	src           Source
	out           *Checked
	users, owners []claim
	// header and missing are set when the header has unknown columns:
	// "missing" problems of columns the header lacks are counted in
	// missing instead of told on every row.
	header  []string
	missing map[string]*missing
}

// missing counts the rows that lack a column no header names.
type missing struct {
	rows, first int
	msg         string
}

// cascade reports whether p is a row's "missing" problem that the unknown
// header explains, and counts it.
func (v *validator) cascade(p *formats.Problem) bool {
	if v.missing == nil || !strings.HasPrefix(p.Msg, "missing") || slices.Contains(v.header, p.Column) {
		return false
	}
	m := v.missing[p.Column]
	if m == nil {
		m = &missing{first: p.Row, msg: strings.TrimPrefix(strings.TrimPrefix(p.Msg, "missing"), ": ")}
		v.missing[p.Column] = m
	}
	m.rows++
	return true
}

func (v *validator) add(p error) {
	v.out.Total++
	if len(v.out.Problems) < MaxProblems {
		v.out.Problems = append(v.out.Problems, p)
	}
}

// row checks one row and notes its claims on a user and on addresses.
func (v *validator) row(row formats.Row) {
	out := v.out
	out.AllRows++
	j, probs := jobs.Parse(row, v.src.Parse)
	for _, p := range probs {
		if !v.cascade(p) {
			v.add(p)
		}
	}
	if j == nil {
		out.Rows++ // an invalid row stops every shard alike
		return
	}
	if j.UserID != "" && j.UserID[0] != '@' {
		out.Bare = true
	}
	mine := v.src.Mine(j)
	if mine {
		out.Rows++
		out.Actions[j.Action]++
		if j.Generates() {
			out.Generate++
			if j.Action == jobs.RegistrationToken {
				out.Tokens++
			}
		}
	}
	for _, col := range j.Ignored() {
		ic := out.Ignored[col]
		if ic.Rows == 0 {
			ic.First = row.Num
		}
		ic.Rows++
		if !slices.Contains(ic.Actions, j.Action) {
			ic.Actions = append(ic.Actions, j.Action)
		}
		out.Ignored[col] = ic
	}
	if out.Named != nil && !j.Action.Room() {
		if j.UserID != "" {
			out.Named[j.UserID] = true
		} else if j.Match != "" {
			out.ByMatch++
		}
	}
	j.Providers(func(p string) {
		u := out.Providers[p]
		if u.Rows == 0 {
			u.First = row.Num
		}
		u.Rows++
		out.Providers[p] = u
	})
	uh := hash(j.Identity())
	// As Identities picks them: a row with a problem stops the run anyway.
	if mine && len(probs) == 0 && v.src.InRows(row.Num) {
		out.IDs = append(out.IDs, uh)
	}
	var roomRow uint32 // marks a room row's claim, for the message
	if j.Action.Room() {
		roomRow = 1 << 30
	}
	v.users = append(v.users, claim{what: uh, aux: uint32(hash(j.Intent())), row: uint32(row.Num) | roomRow})
	j.Claims(func(column, what string) {
		col := uint32(slices.Index(claimColumns, column))
		v.owners = append(v.owners, claim{what: hash(what), aux: uint32(uh), row: uint32(row.Num) | col<<30})
	})
}

func byWhatThenRow(a, b claim) int {
	return cmp.Or(cmp.Compare(a.what, b.what), cmp.Compare(a.row&rowMask, b.row&rowMask))
}

// sameUser finds two rows for one user: the same intent is a harmless
// repeat (skipped at apply), a different one is a problem to solve in the
// sheet.
func (v *validator) sameUser() {
	users := v.users
	slices.SortFunc(users, byWhatThenRow)
	for i := 1; i < len(users); i++ {
		first := users[i-1]
		for i < len(users) && users[i].what == first.what {
			u := users[i]
			if u.aux == first.aux {
				v.out.DupOf[int(u.row&rowMask)] = int(first.row & rowMask)
			} else if u.row&^rowMask != 0 {
				v.add(&formats.Problem{File: v.src.Label(), Row: int(u.row & rowMask), Column: "room_id",
					Msg: fmt.Sprintf("this row's room is also on row %d, with different values: merge the rows (a join row takes several users), or split them into two manifests", first.row&rowMask)})
			} else {
				v.add(&formats.Problem{File: v.src.Label(), Row: int(u.row), Column: "user_id",
					Msg: fmt.Sprintf("this row's user is also on row %d, with different values: merge the rows, or split them into two manifests", first.row)})
			}
			i++
		}
	}
	v.users = nil
}

// sharedClaims finds one address or external id given to two users.
func (v *validator) sharedClaims() {
	owners := v.owners
	slices.SortFunc(owners, byWhatThenRow)
	for i := 1; i < len(owners); i++ {
		first := owners[i-1]
		for i < len(owners) && owners[i].what == first.what {
			if o := owners[i]; o.aux != first.aux {
				col := claimColumns[o.row>>30]
				v.add(&formats.Problem{File: v.src.Label(), Row: int(o.row & rowMask), Column: col,
					Msg: fmt.Sprintf("%s: the same value is given to another user on row %d", strings.TrimSuffix(col, "s"), first.row&rowMask)})
			}
			i++
		}
	}
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
