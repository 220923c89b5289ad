package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHRExportGuide runs the README's "Onboarding from an HR export" on
// samples/hr-export.csv: without flags each HR-only header is one problem;
// with the guide's --map and --ignore the sheet is valid.
func TestHRExportGuide(t *testing.T) {
	const sample = "samples/hr-export.csv"
	var out, errb bytes.Buffer
	if code := run([]string{"synbatch", "validate", "--server-name", "example.org", sample}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Fatalf("validate without flags: exit %d, want 2\n%s%s", code, out.String(), errb.String())
	}
	for _, h := range []string{"Employee No", "Mobile", "Department", "Date of Hire"} {
		if got := strings.Count(out.String(), `unknown column "`+h+`"`); got != 1 {
			t.Errorf("%s told %d times, want once:\n%s", h, got, out.String())
		}
	}
	if strings.Contains(out.String(), "missing") {
		t.Errorf("a per-row cascade:\n%s", out.String())
	}
	out.Reset()
	errb.Reset()
	args := []string{"synbatch", "validate", "--server-name", "example.org",
		"--map", "Mobile=msisdns", "--ignore", "Employee No", "--ignore", "Department", "--ignore", "Date of Hire", sample}
	if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("validate with the guide's flags: exit %d, want 0\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "3 rows, valid") {
		t.Errorf("got %q", out.String())
	}
}
