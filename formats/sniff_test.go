package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesAreJudgedByTheirContent: a workbook named .csv (or .jsonl), and
// a CSV named .xlsx, are refused in one line that says what the file is and
// what to rename it to, instead of a screen of UTF-8 errors.
func TestFilesAreJudgedByTheirContent(t *testing.T) {
	book := writeXLSX(t, []string{"Sheet1"}, map[string]cells{"Sheet1": {"A1": "user_id", "A2": "alice"}})
	data, err := os.ReadFile(book)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	put := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		path string
		want string
	}{
		{put("staff.csv", data), "the file is an Excel workbook (.xlsx), not csv: rename it to " + filepath.Join(dir, "staff.xlsx")},
		{put("staff.jsonl", data), "the file is an Excel workbook (.xlsx), not jsonl: rename it to " + filepath.Join(dir, "staff.xlsx")},
		{put("text.xlsx", []byte("user_id\nalice\n")), "the file is named .xlsx but holds text, not a workbook: if it is CSV, rename it to " + filepath.Join(dir, "text.csv")},
		{put("old.csv", []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest")), "the file is an old Excel workbook (.xls), which synbatch does not read: save it as .xlsx, .ods or CSV UTF-8"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			r, err := Open(tt.path, Options{})
			if err == nil {
				r.Close()
				t.Fatal("opened; want an error saying what the file is")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("got  %q\nwant one line containing %q", err, tt.want)
			}
		})
	}
	// A file whose content matches its name opens as before.
	if r, err := Open(book, Options{}); err != nil {
		t.Errorf("the workbook itself: %v", err)
	} else {
		r.Close()
	}
}
