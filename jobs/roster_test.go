package jobs

import (
	"slices"
	"strings"
	"testing"
)

// TestActionValuesChooseTheAction: a Status column read as the action
// column gives each row the action its value stands for, matched like a
// header (any case, punctuation aside).
func TestActionValuesChooseTheAction(t *testing.T) {
	opt := ParseOptions{File: "roster.csv", ServerName: "hs", ActionValues: map[string]Action{"Left": Deactivate, "Active": Upsert, "On leave": Suspend}}
	for value, want := range map[string]Action{"Left": Deactivate, "left": Deactivate, " LEFT ": Deactivate, "active": Upsert, "on-leave": Suspend, "lock": Lock} {
		j, probs := Parse(row("user_id", "alice", "action", value), opt)
		if len(probs) > 0 {
			t.Fatalf("%q: %v", value, probs)
		}
		if j.Action != want {
			t.Errorf("%q: action %s, want %s", value, j.Action, want)
		}
	}
}

// TestUncoveredActionValueSuggestsTheClosest: a value no --action-value
// covers is a problem naming the cell, with a did-you-mean.
func TestUncoveredActionValueSuggestsTheClosest(t *testing.T) {
	opt := ParseOptions{File: "roster.csv", ServerName: "hs", ActionValues: map[string]Action{"Left": Deactivate, "Active": Upsert}}
	_, probs := Parse(row("user_id", "alice", "action", "Lfet"), opt)
	if len(probs) != 1 {
		t.Fatalf("problems %v, want one", probs)
	}
	msg := probs[0].Error()
	for _, want := range []string{"roster.csv:7:action", `"Lfet"`, `did you mean "Left"?`, "--action-value 'Lfet=ACTION'", "Active=upsert, Left=deactivate"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problem %q lacks %q", msg, want)
		}
	}
}

// TestClosingRowCarriesRosterColumns: a deactivate (or lock, suspend) row
// may carry the person's other roster cells; they are ignored and listed
// on the job (validation says so once per column), not refused.
func TestClosingRowCarriesRosterColumns(t *testing.T) {
	opt := ParseOptions{File: "roster.csv", ServerName: "hs", ActionValues: map[string]Action{"Left": Deactivate}}
	for _, a := range []string{"Left", "lock", "suspend"} {
		r := row("user_id", "alice", "action", a, "displayname", "Alice A", "email", "alice@example.org", "emails", "", "password", "pw")
		j, probs := Parse(r, opt)
		if len(probs) > 0 {
			t.Fatalf("%s: %v", a, probs)
		}
		if got := j.Ignored(); !slices.Equal(got, []string{"displayname", "email", "password"}) {
			t.Errorf("%s: ignored %v", a, got)
		}
	}
	// Other actions still refuse a column they do not read.
	if _, probs := Parse(row("user_id", "alice", "action", "reactivate", "displayname", "Alice"), opt); len(probs) == 0 {
		t.Error("a reactivate row with a displayname was accepted")
	}
}

// TestActionValuesEnterTheRowKey: changing what a value stands for changes
// the row's identity, so a resumed journal does not take a Left row done as
// an upsert for a finished deactivation.
func TestActionValuesEnterTheRowKey(t *testing.T) {
	r := row("user_id", "alice", "action", "Left")
	a := RowKey(r, ParseOptions{ActionValues: map[string]Action{"Left": Deactivate}})
	b := RowKey(r, ParseOptions{ActionValues: map[string]Action{"Left": Lock}})
	c := RowKey(r, ParseOptions{})
	if a == b || a == c {
		t.Fatal("the row key does not depend on --action-value")
	}
}
