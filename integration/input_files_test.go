package integration

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 24 (wip-24b): sheets read however they were saved, and the config
// file beside the flags.

// openpyxlXLSX writes a workbook the way openpyxl saves one (there is no
// PyPI on this machine, so the XML is written by hand, as openpyxl's cell
// writer emits it): strings as inline strings, a formula as <f> followed by
// an empty <v> (openpyxl does not compute formulas), and a workbook that
// asks the spreadsheet to recompute everything on load. rows are the cells'
// XML, header first.
func openpyxlXLSX(t *testing.T, path string, rows []string) {
	t.Helper()
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	var data strings.Builder
	for i, r := range rows {
		fmt.Fprintf(&data, `<row r="%d">%s</row>`, i+1, r)
	}
	parts := []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
			`<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`},
		{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8"?><workbook ` + ns + `><workbookPr/><sheets><sheet name="Sheet" sheetId="1" state="visible" r:id="rId1"/></sheets>` +
			`<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>`},
		{"xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/xl/worksheets/sheet1.xml"/></Relationships>`},
		{"xl/worksheets/sheet1.xml", `<?xml version="1.0" encoding="UTF-8"?><worksheet ` + ns + `><sheetPr><outlinePr summaryBelow="1" summaryRight="1"/><pageSetUpPr/></sheetPr>` +
			`<sheetData>` + data.String() + `</sheetData></worksheet>`},
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, p := range parts {
		w, err := zw.Create(p.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// str is an inline-string cell as openpyxl writes one.
func str(ref, v string) string {
	return fmt.Sprintf(`<c r="%s" t="inlineStr"><is><t>%s</t></is></c>`, ref, v)
}

// TestOpenpyxlFormulasWithoutValuesAreRefusedNamingEachCell: a roster whose
// display names and emails are formulas saved by openpyxl (no cached values)
// fails validate with exit 2, one FILE:ROW:COLUMN line per formula cell, and
// apply creates nobody (read back from the server): read as empty, those
// cells would have made accounts without names or emails.
func TestOpenpyxlFormulasWithoutValuesAreRefusedNamingEachCell(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	rows := []string{str("A1", "user_id") + str("B1", "First") + str("C1", "displayname") + str("D1", "emails")}
	var cells []string
	for i := 2; i <= 4; i++ {
		rows = append(rows, str(fmt.Sprintf("A%d", i), fmt.Sprintf("%s-%d", p, i))+str(fmt.Sprintf("B%d", i), "Ann")+
			fmt.Sprintf(`<c r="C%d"><f>B%d&amp;" Smith"</f><v></v></c>`, i, i)+
			fmt.Sprintf(`<c r="D%d"><f>LOWER(A%d)&amp;"@example.org"</f><v/></c>`, i, i))
		cells = append(cells, fmt.Sprintf("roster.xlsx:%d:displayname", i), fmt.Sprintf("roster.xlsx:%d:emails", i))
	}
	openpyxlXLSX(t, filepath.Join(dir, "roster.xlsx"), rows)

	r := e.synbatch(t, dir, "validate", "--ignore", "First", "roster.xlsx")
	if r.code != 2 {
		t.Fatalf("validate: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, c := range cells {
		if !strings.Contains(r.stdout, c+": a formula saved without its value: open and save the sheet in a spreadsheet program") {
			t.Errorf("validate does not name %s as a formula without its value:\n%s", c, r.stdout)
		}
	}

	a := e.synbatch(t, dir, "apply", "--yes", "--ignore", "First", "roster.xlsx")
	if a.code != 2 {
		t.Errorf("apply: exit %d, want 2 (nothing sent)\n%s%s", a.code, a.stdout, a.stderr)
	}
	for i := 2; i <= 4; i++ {
		if u := e.user(t, e.id(fmt.Sprintf("%s-%d", p, i))); u != nil {
			t.Errorf("apply of an invalid sheet created %s", u.Name)
		}
	}
}

// TestConfigMapGivesWayToIgnoreFlag: the config file maps Phone to msisdns,
// and the admin runs with --ignore Phone: the flag wins. apply exits 0 with
// no per-row error (before, the config's map beat the flag and every row
// failed on its national number), and the accounts read back from the server
// have their names and no phone number.
func TestConfigMapGivesWayToIgnoreFlag(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	p := uniq(t)
	cfg := writeFile(t, dir, "synbatch.yaml", "map:\n  Phone: msisdns\n  Full Name: displayname\n")
	var b strings.Builder
	b.WriteString("User ID,Full Name,Phone\n")
	for i := range 5 {
		fmt.Fprintf(&b, "%s-%d,Person %d,07700 900%03d\n", p, i, i, i)
	}
	writeFile(t, dir, "roster.csv", b.String())

	v := e.synbatch(t, dir, "validate", "-c", cfg, "--ignore", "Phone", "roster.csv")
	if v.code != 0 || !strings.Contains(v.stdout, "roster.csv: 5 rows, valid") {
		t.Fatalf("validate -c with --ignore Phone: exit %d, want 0 and 5 valid rows\n%s%s", v.code, v.stdout, v.stderr)
	}
	r := e.synbatch(t, dir, "apply", "--yes", "-c", cfg, "--ignore", "Phone", "roster.csv")
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "roster.csv:2:") {
		t.Fatalf("apply -c with --ignore Phone: exit %d, want 0 and no per-row problem\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i := range 5 {
		u := e.user(t, e.id(fmt.Sprintf("%s-%d", p, i)))
		if u == nil {
			t.Errorf("%s-%d was not created", p, i)
			continue
		}
		if u.Displayname == nil || *u.Displayname != fmt.Sprintf("Person %d", i) {
			t.Errorf("%s: displayname %v, want Person %d (the config's map of Full Name still applies)", u.Name, u.Displayname, i)
		}
		for _, tp := range u.Threepids {
			if tp.Medium == "msisdn" {
				t.Errorf("%s has phone %s from an ignored column", u.Name, tp.Address)
			}
		}
	}
}

// TestLibreOfficeODSRosterOnboards has LibreOffice Calc save an HR roster as
// .ods (its own typing: numbers, booleans, dates), applies it to the real
// Synapse with the HR headers mapped, and reads every account back (name,
// email, phone, admin flag, a login with the sheet's password); the same
// sheet applied again writes nothing (onboardHR).
func TestLibreOfficeODSRosterOnboards(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	lo := soffice(t)
	dir := t.TempDir()
	people := hrPeople(uniq(t), 40)
	var b strings.Builder
	b.WriteString("User ID,Display Name,Email,Phone,Department,Date of Hire,Admin,Password\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s,%q,%s,%s,%s,%s,%s,%s\n", p.local, p.display, p.email, p.phone, p.dept, p.hired,
			strings.ToUpper(fmt.Sprint(p.admin)), p.password)
	}
	saveWithLibreOffice(t, lo, writeFile(t, dir, "roster.csv", b.String()), "ods")
	args := []string{"roster.ods", "--map", "Phone=msisdns", "--ignore", "Department", "--ignore", "Date of Hire", "--phone-region", "DE"}
	v := e.synbatch(t, dir, append([]string{"validate"}, args...)...)
	if v.code != 0 || !strings.Contains(v.stdout, fmt.Sprintf("roster.ods: %d rows, valid", len(people))) ||
		!strings.Contains(v.stderr, `read sheet "roster" (sheet 1)`) {
		t.Fatalf("validate: exit %d, want 0 and %d valid rows read from sheet 1\n%s%s", v.code, len(people), v.stdout, v.stderr)
	}
	e.onboardHR(t, dir, people, args...)
}

// TestPastedServerURLAndBearerTokenAreExplained: a server URL pasted with
// its API path and a token file written as an Authorization header ("Bearer
// syt_…") each get one line saying what synbatch took, and the run works:
// the account is on the server.
func TestPastedServerURLAndBearerTokenAreExplained(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	local := uniq(t) + "-pasted"
	tok, err := os.ReadFile(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	bearer := writeFile(t, dir, "token", "Bearer "+strings.TrimSpace(string(tok))+"\n")
	writeFile(t, dir, "one.csv", "user_id,displayname\n"+local+",Pasted\n")
	r := e.synbatch(t, dir, "apply", "--yes", "--server", e.server+"/_matrix/client/v3/", "--token-file", bearer, "one.csv")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"holds an API path; using its base " + e.server + " ", `the token starts with "Bearer "`} {
		if strings.Count(r.stderr, want) != 1 {
			t.Errorf("stderr does not say once %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(tok))) {
		t.Error("the token is in the output")
	}
	if u := e.user(t, e.id(local)); u == nil || u.Displayname == nil || *u.Displayname != "Pasted" {
		t.Errorf("the account was not made: %+v", u)
	}
}

// TestHTTPSAgainstPlainHTTPPortIsSaidAtOnce: Synapse's plain-HTTP port given
// as https:// is named as such, with the http:// URL to use, well before the
// 10 s TLS handshake timeout that was all one got before; nothing is sent.
func TestHTTPSAgainstPlainHTTPPortIsSaidAtOnce(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	if !strings.HasPrefix(e.server, "http://") {
		t.Skipf("the test server %s is not plain HTTP", e.server)
	}
	dir := t.TempDir()
	local := uniq(t) + "-https"
	writeFile(t, dir, "one.csv", "user_id,displayname\n"+local+",X\n")
	wrong := "https://" + strings.TrimPrefix(e.server, "http://")
	start := time.Now()
	r := e.synbatch(t, dir, "apply", "--yes", "--server", wrong, "one.csv")
	took := time.Since(start)
	if r.code != 3 || !strings.Contains(r.stderr, wrong+" answers plain HTTP, not HTTPS, on that port: use "+e.server) {
		t.Fatalf("apply with https:// on the plain port: exit %d, want 3 and the http:// URL\n%s%s", r.code, r.stdout, r.stderr)
	}
	if took >= 8*time.Second {
		t.Errorf("took %v; want the answer before the 10 s handshake timeout", took.Round(time.Millisecond))
	}
	if u := e.user(t, e.id(local)); u != nil {
		t.Errorf("%s was created", u.Name)
	}
}
