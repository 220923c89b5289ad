package integration

import (
	"archive/zip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestExportUsersRoundTrip exports users to each format, plans the file
// (every row unchanged), then edits one cell and applies: that cell is the
// only change.
func TestExportUsersRoundTrip(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	ss := specs(p, 3)
	ss[0].display = `=HYPERLINK("http://x")`
	// A display name with quotes and a comma needs CSV quoting: encoding/csv.
	seed := filepath.Join(dir, "seed.csv")
	f, _ := os.Create(seed)
	w := csv.NewWriter(f)
	w.Write([]string{"user_id", "displayname", "emails", "msisdns", "external_ids", "admin"})
	for _, s := range ss {
		w.Write([]string{s.local, s.display, strings.Join(s.emails, ";"), strings.Join(s.msisdns, ";"), strings.Join(s.ids, ";"), fmt.Sprint(s.admin)})
	}
	w.Flush()
	f.Close()
	e.applyJSON(t, dir, 0, "seed.csv")

	for _, ext := range []string{"csv", "xlsx", "ods", "jsonl"} {
		t.Run(ext, func(t *testing.T) {
			out := filepath.Join(dir, "users."+ext)
			r := e.synbatch(t, dir, "export", "users", "--out", out, "--user-id", p)
			if r.code != 0 {
				t.Fatalf("export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if _, err := os.Stat(out + ".partial.jsonl"); err == nil {
				t.Fatal("the staging file was left behind")
			}
			plan := e.synbatch(t, dir, "plan", out)
			if plan.code != 0 || !strings.Contains(plan.stdout, "3 rows: 3 unchanged") {
				t.Fatalf("plan of the export: exit %d\n%s%s", plan.code, plan.stdout, plan.stderr)
			}
			switch ext {
			case "csv":
				raw, _ := os.ReadFile(out)
				if !strings.Contains(string(raw), `'=HYPERLINK(""http://x"")`) {
					t.Fatalf("the formula is not neutralised in CSV:\n%s", raw)
				}
			case "xlsx":
				x, err := excelize.OpenFile(out)
				if err != nil {
					t.Fatal(err)
				}
				rows, _ := x.GetRows("Sheet1")
				found := false
				for i, row := range rows {
					for j, cell := range row {
						name, _ := excelize.CoordinatesToCellName(j+1, i+1)
						if formula, _ := x.GetCellFormula("Sheet1", name); formula != "" {
							t.Errorf("cell %s is a formula: %s", name, formula)
						}
						// A text cell is never evaluated: the value is shown
						// as it is, without a '.
						if strings.Contains(cell, "HYPERLINK") {
							found = true
							if cell != `=HYPERLINK("http://x")` {
								t.Errorf("cell %s = %q, want the display name as it is", name, cell)
							}
						}
					}
				}
				x.Close()
				if !found {
					t.Fatal("the display name is missing from the XLSX")
				}
			case "ods":
				// A text cell, never a formula: the value as it is.
				content := odsContent(t, out)
				if strings.Contains(content, "table:formula") || !strings.Contains(content, `<text:p>=HYPERLINK(&#34;http://x&#34;)</text:p>`) {
					t.Errorf("the display name is not a plain text cell of the ODS:\n%s", content)
				}
			}
		})
	}

	// Edit one cell of the CSV export: apply changes that and nothing else.
	out := filepath.Join(dir, "users.csv")
	raw, _ := os.ReadFile(out)
	edited := strings.Replace(string(raw), ss[1].display, "Edited Name", 1)
	writeFile(t, dir, "edited.csv", edited)
	st := e.applyJSON(t, dir, 0, "edited.csv")
	if st.Outcomes["done"] != 1 || st.Outcomes["unchanged"] != 2 || st.Writes != 1 {
		t.Fatalf("apply of one edit: %+v", st)
	}
	ss[1].display = "Edited Name"
	for _, s := range ss {
		s.password = ""
		e.check(t, s)
	}
	jr, _ := os.ReadFile(filepath.Join(dir, "edited.csv.journal.jsonl"))
	var changed []string
	for _, line := range strings.Split(string(jr), "\n") {
		var rec struct {
			Type    string   `json:"type"`
			Changed []string `json:"changed"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Type == "row" {
			changed = append(changed, rec.Changed...)
		}
	}
	if strings.Join(changed, ",") != "displayname" {
		t.Fatalf("apply changed %v, want only displayname", changed)
	}
}

// TestExportDataCommand runs `export data` as an admin would: users by
// argument and by a manifest matched by email; a second run skips them.
func TestExportDataCommand(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ss := specs(uniq(t), 2)
	writeFile(t, dir, "seed.csv", csvOf(ss))
	e.applyJSON(t, dir, 0, "seed.csv")
	writeFile(t, dir, "who.csv", "email\n"+ss[1].emails[0]+"\n")
	r := e.synbatch(t, dir, "export", "data", ss[0].local, "--users", "who.csv", "--match-by", "email", "--out", "bundles")
	if r.code != 0 {
		t.Fatalf("export data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range ss {
		if !strings.Contains(r.stdout, e.id(s.local)+": ") || !strings.Contains(r.stdout, "10 files") {
			t.Fatalf("output does not list %s's bundle:\n%s", s.local, r.stdout)
		}
	}
	index, err := os.ReadFile(filepath.Join(dir, "bundles", "index.csv"))
	if err != nil || !strings.Contains(string(index), e.id(ss[1].local)) {
		t.Fatalf("index.csv: %v\n%s", err, index)
	}
	r = e.synbatch(t, dir, "export", "data", ss[0].local, "--out", "bundles")
	if r.code != 0 || !strings.Contains(r.stdout, "complete from an earlier run") {
		t.Fatalf("second run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// odsContent returns the content.xml of the OpenDocument file at path.
func odsContent(t *testing.T, path string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open("content.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
