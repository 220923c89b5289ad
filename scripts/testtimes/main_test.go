package main

import (
	"strings"
	"testing"
)

// TestReadKeepsTopLevelTimesAndPrintsFailures: top-level tests' times are
// kept (subtests are inside their parent's), and the output of a failed
// test is printed, of a passed one not.
func TestReadKeepsTopLevelTimesAndPrintsFailures(t *testing.T) {
	stream := `{"Action":"run","Package":"x/integration","Test":"TestA"}
{"Action":"output","Package":"x/integration","Test":"TestA","Output":"quiet\n"}
{"Action":"pass","Package":"x/integration","Test":"TestA","Elapsed":12.5}
{"Action":"output","Package":"x/integration","Test":"TestB/sub","Output":"sub says\n"}
{"Action":"fail","Package":"x/integration","Test":"TestB/sub","Elapsed":3}
{"Action":"output","Package":"x/integration","Test":"TestB","Output":"b_test.go:9: server said no\n"}
{"Action":"fail","Package":"x/integration","Test":"TestB","Elapsed":3.5}
{"Action":"fail","Package":"x/integration","Elapsed":16}
`
	var out strings.Builder
	times, failed, err := read(strings.NewReader(stream), &out, "s.json")
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a failed test, not reported as failed")
	}
	if len(times) != 2 || times[0] != (timing{"integration.TestA", 12.5, "pass"}) || times[1] != (timing{"integration.TestB", 3.5, "fail"}) {
		t.Errorf("times %+v", times)
	}
	if !strings.Contains(out.String(), "server said no") || !strings.Contains(out.String(), "sub says") || strings.Contains(out.String(), "quiet") {
		t.Errorf("printed:\n%s", out.String())
	}
}
