// Package report turns result journals into one self-contained HTML page
// for people: what ran, when, against which server and by which version;
// counts per outcome and per action; rows per second and rows in flight over
// time as inline SVG charts; and the failed and uncertain rows with their
// errors. It is the audit trail of an offboarding or an erasure, so the page
// loads nothing from anywhere and runs no script: it opens from a mail
// attachment or an archive as it is, years later.
package report

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// Report is what the page shows.
type Report struct {
	Journals []string
	Runs     []Run
	Rows     int            // rows with a result, the latest of each counted
	Outcomes []Count        // per outcome, final ones first
	Actions  []ActionCounts // per action, by outcome
	Problems []Problem
	Pending  int // rows with a write sent but no result
	First    time.Time
	Last     time.Time
	Rate     Series // rows finished per second
	InFlight Series // rows being worked on at once (mean over each step)
}

// Run is one run's part of a journal: its header and, when it ended
// cleanly, its closing record; the actions its rows ran (the header's
// action= is only the default for rows without an action column), and
// the users its destructive rows changed (outcome done), by id.
type Run struct {
	journal.Header
	End      *journal.End
	Actions  []Ran // per action, the rows of this run
	Affected []Affected
}

// Ran is how many rows of a run ran one action.
type Ran struct {
	Action string
	N      int
}

// Affected is a user a destructive row of a run changed.
type Affected struct {
	Action string
	UserID string
	Row    int
}

// Problem is a failed or uncertain row with the manifest it came from.
type Problem struct {
	journal.Record
	Manifest string
}

// Count is a number of rows with one outcome.
type Count struct {
	Outcome string
	N       int
}

// ActionCounts is the outcomes of the rows of one action.
type ActionCounts struct {
	Action string
	Total  int
	By     map[string]int
	// Created counts the done rows whose write made a new account or
	// token (answered 201): an auditor tells a new account from a change.
	Created int
}

// Series is a quantity sampled at equal steps from Report.First.
type Series struct {
	Step   time.Duration
	Values []float64
}

// Max is the largest value of s (0 for none).
func (s Series) Max() float64 {
	m := 0.0
	for _, v := range s.Values {
		m = max(m, v)
	}
	return m
}

// Read builds the report of one or more journals (the shards of one
// manifest read as one, as journal merge does). A journal that is damaged
// or is not synbatch's is an error, as for journal summary.
func Read(paths ...string) (*Report, error) {
	sum, err := journal.SummarizeAll(paths...)
	if err != nil {
		return nil, err
	}
	r := &Report{Journals: paths, Rows: sum.Rows, Pending: sum.Pending}
	// The final outcomes first, then the ones that need a person.
	for _, o := range []journal.Outcome{journal.Done, journal.Unchanged, journal.Skipped, journal.Failed, journal.Uncertain} {
		if n := sum.Outcomes[string(o)]; n > 0 {
			r.Outcomes = append(r.Outcomes, Count{Outcome: string(o), N: n})
		}
	}
	latest := map[string]journal.Record{}
	manifests := map[string]string{} // row key -> manifest of its latest result's run
	var rows []journal.Record        // every result, for the time series
	for _, p := range paths {
		if err := readRuns(p, r, latest, manifests, &rows); err != nil {
			return nil, err
		}
	}
	for _, rec := range sum.Failed {
		r.Problems = append(r.Problems, Problem{Record: rec, Manifest: manifests[rec.Key]})
	}
	byAction := map[string]*ActionCounts{}
	for _, rec := range latest {
		a := byAction[rec.Action]
		if a == nil {
			a = &ActionCounts{Action: rec.Action, By: map[string]int{}}
			byAction[rec.Action] = a
		}
		a.Total++
		a.By[string(rec.Outcome)]++
		if rec.Outcome == journal.Done && rec.Status == 201 {
			a.Created++
		}
	}
	for _, a := range byAction {
		r.Actions = append(r.Actions, *a)
	}
	sort.Slice(r.Actions, func(i, j int) bool { return r.Actions[i].Action < r.Actions[j].Action })
	r.series(rows)
	return r, nil
}

// readRuns reads the run headers, closing records and row results of one
// journal (already checked by SummarizeAll).
func readRuns(path string, r *Report, latest map[string]journal.Record, manifests map[string]string, rows *[]journal.Record) error {
	first := len(r.Runs)          // this journal's runs start here
	var actions map[string]string // row key -> its action, for the run being read
	closeRun := func() {
		if len(r.Runs) > first && actions != nil {
			run := &r.Runs[len(r.Runs)-1]
			n := map[string]int{}
			for _, a := range actions {
				n[a]++
			}
			for a, n := range n {
				run.Actions = append(run.Actions, Ran{Action: a, N: n})
			}
			sort.Slice(run.Actions, func(i, j int) bool { return run.Actions[i].Action < run.Actions[j].Action })
		}
		actions = map[string]string{}
	}
	// Scan drops a torn last line, as summary does, so both count the
	// same rows; records summary accepted decode here.
	_, err := journal.ScanFile(path, func(b []byte) error {
		var kind struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &kind); err != nil {
			return err
		}
		switch kind.Type {
		case "run":
			var h journal.Header
			if err := json.Unmarshal(b, &h); err == nil {
				closeRun()
				r.Runs = append(r.Runs, Run{Header: h})
			}
		case "end":
			var e journal.End
			if err := json.Unmarshal(b, &e); err == nil && len(r.Runs) > 0 {
				r.Runs[len(r.Runs)-1].End = &e
			}
		case "row":
			var rec journal.Record
			if err := json.Unmarshal(b, &rec); err == nil {
				latest[rec.Key] = rec
				*rows = append(*rows, rec)
				if len(r.Runs) > first {
					run := &r.Runs[len(r.Runs)-1]
					manifests[rec.Key] = run.Manifest
					actions[rec.Key] = rec.Action
					if rec.Outcome == journal.Done && jobs.Action(rec.Action).Destructive() && rec.UserID != "" {
						run.Affected = append(run.Affected, Affected{Action: rec.Action, UserID: rec.UserID, Row: rec.Row})
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	closeRun()
	return nil
}

// series samples the rows' results in equal steps: how many finished
// per second, and how many were being worked on at once (each row from
// its start, its result's time less its duration, to its result).
func (r *Report) series(rows []journal.Record) {
	// A result's time and duration are taken as the journal holds them,
	// which journal summary does not judge: a clock stepped back, a hand
	// edit or merged shards give times before 1970 and durations below
	// zero or past the row's own time. Such a row counts from its time
	// alone (no time: not at all), so every index below stays in range
	// and no sum overflows.
	span := func(rec journal.Record) (start, end int64, ok bool) {
		if rec.Time <= 0 {
			return 0, 0, false
		}
		return rec.Time - min(max(rec.DurationMS, 0), rec.Time), rec.Time, true
	}
	var first, last int64
	found := false
	for _, rec := range rows {
		start, end, ok := span(rec)
		if !ok {
			continue
		}
		if !found || start < first {
			first = start
		}
		last, found = max(last, end), true
	}
	if !found || last <= first {
		return
	}
	r.First, r.Last = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	width := last - first
	// At most 60 points, none shorter than a second (shorter steps alias:
	// rows every half second in steps of a third show as 0, 3, 0, 3);
	// a run shorter than two seconds gets two points.
	step := max(1000, ceilDiv(width, 60))
	if width < 2000 {
		step = max(1, (width+1)/2)
	}
	n := max(2, int(ceilDiv(width, step)))
	done := make([]float64, n)
	busy := make([]float64, n) // row-milliseconds of work in each step
	for _, rec := range rows {
		s, e, ok := span(rec)
		if !ok {
			continue
		}
		done[min(int((e-first)/step), n-1)]++
		for s < e {
			j := min(int((s-first)/step), n-1)
			end := e
			if j < n-1 {
				end = min(e, first+int64(j+1)*step)
			}
			busy[j] += float64(end - s)
			s = end
		}
	}
	r.Rate = Series{Step: time.Duration(step) * time.Millisecond, Values: make([]float64, n)}
	r.InFlight = Series{Step: time.Duration(step) * time.Millisecond, Values: make([]float64, n)}
	for i := range n {
		r.Rate.Values[i] = done[i] * 1000 / float64(step)
		r.InFlight.Values[i] = busy[i] / float64(step)
	}
}

// ceilDiv is a/b rounded up, for a >= 0 and b > 0, without overflow.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}
