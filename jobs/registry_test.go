package jobs

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRegistryIsConsistent: every action is registered once, under the
// name its constant says, and knows how to plan.
func TestRegistryIsConsistent(t *testing.T) {
	seen := map[Action]bool{}
	for _, s := range Specs() {
		if seen[s.Name] || lookup(s.Name) != s || s.plan == nil || s.Kind == "" {
			t.Errorf("%s: registered twice, not found by name, without a plan or without a kind", s.Name)
		}
		seen[s.Name] = true
		for _, c := range s.Columns {
			if !slices.Contains(KnownColumns(), c) {
				t.Errorf("%s: column %s is not known", s.Name, c)
			}
		}
		if s.Name.Room() != (s.Kind == RoomRow) || s.Name.Destructive() != s.Destructive {
			t.Errorf("%s: Room or Destructive disagree with the spec", s.Name)
		}
	}
	if !slices.Equal(Actions()[:3], []Action{Create, Update, Upsert}) || len(Actions()) != len(registry) {
		t.Fatalf("actions %v", Actions())
	}
}

// TestActionTablesAgreeWithTheRegistry: the action tables in
// docs/actions.md name every registered action, and each row lists exactly the columns its
// actions' specs read (the create/update/upsert row points at the user
// columns).
func TestActionTablesAgreeWithTheRegistry(t *testing.T) {
	b, err := os.ReadFile("../docs/actions.md")
	if err != nil {
		t.Fatal(err)
	}
	tick := regexp.MustCompile("`([a-z_-]+)`")
	named := map[Action]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 {
			continue // | action | what it does | columns |
		}
		var want []string // the columns of the row's actions
		row := false
		for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
			if s := lookup(Action(m[1])); s != nil {
				named[s.Name], row = true, true
				for _, c := range s.Columns {
					if !slices.Contains(want, c) {
						want = append(want, c)
					}
				}
			}
		}
		if !row || strings.Contains(cells[3], "the user columns") {
			continue
		}
		var listed []string
		for _, m := range tick.FindAllStringSubmatch(cells[3], -1) {
			if slices.Contains(KnownColumns(), m[1]) {
				listed = append(listed, m[1])
			}
		}
		slices.Sort(listed)
		slices.Sort(want)
		if !slices.Equal(listed, want) {
			t.Errorf("docs/actions.md row %q lists columns %v; its actions read %v", strings.TrimSpace(cells[1]), listed, want)
		}
	}
	for _, s := range Specs() {
		if !named[s.Name] {
			t.Errorf("docs/actions.md has no action table row for %s", s.Name)
		}
	}
}
