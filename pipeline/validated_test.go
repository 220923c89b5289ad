package pipeline

import (
	"testing"

	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/journal"
)

// A journal written with no --map and --ignore given as nil (older
// versions, the resume benchmark) and a command line that makes them
// empty mean the same run: the resume reuses the recorded validation
// instead of reading a million rows again.
func TestRecordedValidationReusedWhetherNoMapIsNilOrEmpty(t *testing.T) {
	const sum = "0123abcd"
	written := Source{Path: "m.csv", Parse: jobs.ParseOptions{File: "m.csv", ServerName: "hs.test"}}
	resumed := written
	resumed.Parse.Map, resumed.Parse.Ignore = map[string]string{}, []string{}
	checked := &Checked{Rows: 3, AllRows: 3, Actions: map[jobs.Action]int{jobs.Upsert: 3}, DupOf: map[int]int{}}
	st := &journal.State{Runs: []journal.Header{{Type: "run", Validated: checked.Record(Fingerprint(written, sum))}}}
	got, err := Revalidated(st, Fingerprint(resumed, sum))
	if err != nil || got == nil || got.Rows != 3 {
		t.Fatalf("recorded validation not reused: %+v, %v", got, err)
	}
	// A map that says something is another run.
	resumed.Parse.Map = map[string]string{"Mail": "emails"}
	if got, err := Revalidated(st, Fingerprint(resumed, sum)); err != nil || got != nil {
		t.Fatalf("a --map the journal's run did not have reused its validation: %+v, %v", got, err)
	}
}
