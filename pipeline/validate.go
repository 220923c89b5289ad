// Package pipeline runs a manifest: rows are read as a stream, validated,
// turned into jobs, fanned out to a rate-limited errgroup worker pool, and
// each result is written to the journal by a single writer. Memory does not
// grow with the manifest beyond a few bytes of bookkeeping per row.
package pipeline

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
)

// Source names a manifest and how to read it.
type Source struct {
	Path  string
	Sheet string
	Parse jobs.ParseOptions
	// Shard K of Shards (0-based): only the rows whose identity hashes to
	// K are run. Shards 0 or 1 runs every row.
	Shard, Shards int
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
	Generate int                 // rows that may generate a password
	Bare     bool                // some user ids were bare localparts
}

// MaxProblems bounds the problems kept, so a broken million-row file does
// not fill memory; Total still counts them all.
const MaxProblems = 1000

// ErrInvalid is returned when a manifest fails validation.
var ErrInvalid = errors.New("manifest is not valid")

type seen struct {
	row    int32
	intent uint64
}

// Validate reads the whole manifest and reports every problem: bad cells,
// unknown columns, and rows that disagree about one user (two rows for the
// same user with different intent, or one email, msisdn or external id given
// to two users). It sends nothing anywhere.
func Validate(src Source) (*Checked, error) {
	r, err := formats.Open(src.Path, formats.Options{Sheet: src.Sheet})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := &Checked{DupOf: map[int]int{}, Actions: map[jobs.Action]int{}}
	add := func(p error) {
		out.Total++
		if len(out.Problems) < MaxProblems {
			out.Problems = append(out.Problems, p)
		}
	}
	for _, p := range jobs.CheckColumns(src.Path, r.Columns()) {
		add(p)
	}
	users := map[uint64]seen{}
	owners := map[uint64]seen{} // threepid or external id -> user and first row
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var p *formats.Problem
		if errors.As(err, &p) {
			add(p)
			// A header problem comes before its rows, which still follow.
			if p.Row > 1 {
				out.Rows++
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src.Path, err)
		}
		out.AllRows++
		j, probs := jobs.Parse(row, src.Parse)
		for _, p := range probs {
			add(p)
		}
		if j == nil {
			out.Rows++ // an invalid row stops every shard alike
			continue
		}
		if src.Mine(j) {
			out.Rows++
		}
		if j.UserID != "" && j.UserID[0] != '@' {
			out.Bare = true
		}
		if src.Mine(j) {
			out.Actions[j.Action]++
			if j.Generates() {
				out.Generate++
			}
		}
		who := j.UserID
		if who == "" {
			who = "match:" + j.Match
		}
		uh, ih := hash(who), hash(j.Key)
		if prev, ok := users[uh]; ok {
			if prev.intent == ih {
				out.DupOf[row.Num] = int(prev.row)
			} else {
				add(&formats.Problem{File: src.Path, Row: row.Num, Column: colName(row, "user_id"),
					Msg: fmt.Sprintf("%s is also on row %d with different values: merge the rows, or split them into two manifests", strings.TrimPrefix(who, "match:"), prev.row)})
			}
			continue
		}
		users[uh] = seen{row: int32(row.Num), intent: ih}
		claim := func(col, what string) {
			h := hash(what)
			if prev, ok := owners[h]; ok && prev.intent != uh {
				add(&formats.Problem{File: src.Path, Row: row.Num, Column: colName(row, col),
					Msg: fmt.Sprintf("%s is also given to another user on row %d", what, prev.row)})
				return
			}
			owners[h] = seen{row: int32(row.Num), intent: uh}
		}
		if j.Emails != nil {
			for _, e := range j.Emails.Values {
				claim("emails", "email "+e)
			}
		}
		if j.Msisdns != nil {
			for _, m := range j.Msisdns.Values {
				claim("msisdns", "msisdn "+m)
			}
		}
		for _, x := range j.ExternalIDs {
			claim("external_ids", "external id "+x.AuthProvider+":"+x.ExternalID)
		}
	}
	return out, nil
}

func colName(row formats.Row, col string) string {
	if f, ok := row.Fields[col]; ok && f.Column != "" {
		return f.Column
	}
	return col
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
