package export

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIndexCSVIsFormulaSafeAndReadsBack writes index.csv for ids a
// spreadsheet would take for formulas and expects every such cell guarded,
// as formats guards CSV cells, and the same ids back when it is loaded.
func TestIndexCSVIsFormulaSafeAndReadsBack(t *testing.T) {
	out := t.TempDir()
	ids := []string{"=1+2", "+cmd|' /C calc'!A0", "-2+3", "@alice:hs", "\tx", "'quoted", "plain"}
	idx := &bundleIndex{byUser: map[string]string{}, byFolder: map[string]string{}}
	if _, err := idx.assign(ids); err != nil {
		t.Fatal(err)
	}
	if err := idx.write(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, indexName))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if strings.ContainsAny(cell[:1], "=+-@\t\r") {
				t.Errorf("index.csv cell %q starts with a formula character", cell)
			}
		}
	}
	back, err := loadBundleIndex(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if back.byUser[id] != idx.byUser[id] || back.byUser[id] == "" {
			t.Errorf("%q: folder %q read back as %q", id, idx.byUser[id], back.byUser[id])
		}
	}
	// An index written before the guard still loads.
	old := "user_id,folder\n@bob:hs," + folderName("@bob:hs", 10) + "\n"
	if err := os.WriteFile(filepath.Join(out, indexName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if back, err = loadBundleIndex(out); err != nil || back.byUser["@bob:hs"] == "" {
		t.Errorf("old index: %v, %v", back, err)
	}
}
