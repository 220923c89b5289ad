package integration

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 12's acceptance: HR sheets as they arrive, 500 staff each, onboarded
// against the real Synapse with no hand editing, every field read back.

const hrStaff = 500

// hrPerson is one member of staff: the account the server must end with,
// and how the sheet writes the phone number.
type hrPerson struct {
	spec
	email, phone, dept, hired string
}

// hrPeople makes n staff whose ids, addresses and numbers are new to the
// server. Phones are German mobiles (+49 151, eight digits) written the four
// ways people type them; the fourth is national and needs --phone-region DE.
// Emails are written in mixed case: Synapse keeps them lower case.
func hrPeople(p string, n int) []hrPerson {
	block := mrand.IntN(99000)
	var out []hrPerson
	for i := range n {
		local := fmt.Sprintf("%s.staff%03d", p, i)
		d := fmt.Sprintf("%05d%03d", block, i)
		var phone string
		switch i % 4 {
		case 0:
			phone = "+49 151 " + d[:4] + " " + d[4:]
		case 1:
			phone = "+49 (0)151-" + d[:4] + "-" + d[4:]
		case 2:
			phone = "0049 151." + d[:4] + "." + d[4:]
		default:
			phone = "0151 " + d
		}
		display := fmt.Sprintf("Jürgen Müller-Løvås %d", i)
		if i == 7 {
			display = "Doe; Jane" // a separator inside a quoted cell
		}
		email := fmt.Sprintf("Staff.%d.%s@Example.ORG", i, p)
		out = append(out, hrPerson{
			spec: spec{local: local, display: display, password: "Pw-" + local + "-Xy9",
				emails: []string{strings.ToLower(email)}, msisdns: []string{"49151" + d}, admin: i%100 == 3},
			email: email, phone: phone, dept: []string{"Sales", "IT", "HR"}[i%3], hired: fmt.Sprintf("2024-%02d-%02d", 1+i%12, 1+i%28),
		})
	}
	return out
}

// onboardHR applies the sheet (args: the manifest and its flags), reads
// every account back from the server (display name, emails, msisdns, admin
// flag, and a login with the sheet's password), then applies the sheet again
// with a fresh journal: nothing is left to write.
func (e *env) onboardHR(t *testing.T, dir string, people []hrPerson, args ...string) {
	t.Helper()
	s := e.applyJSON(t, dir, 0, append([]string{"--yes"}, args...)...)
	if s.Rows != len(people) || s.Outcomes["done"] != len(people) {
		t.Fatalf("apply: %+v; want %d rows done", s, len(people))
	}
	for _, p := range people {
		e.check(t, p.spec)
		if t.Failed() {
			return // one account's diff says enough; 500 would drown it
		}
	}
	again := e.applyJSON(t, dir, 0, append([]string{"--yes", "--journal", filepath.Join(dir, "again.journal.jsonl")}, args...)...)
	if again.Writes != 0 {
		t.Errorf("the same sheet applied again wrote %d times; want 0 (outcomes %v)", again.Writes, again.Outcomes)
	}
}

// soffice finds LibreOffice. CI (SYNBATCH_REQUIRE_LIBREOFFICE=1, set by
// .ci/run, which installs it) fails rather than skips without it.
func soffice(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SYNBATCH_REQUIRE_LIBREOFFICE") == "1" {
		t.Fatal("LibreOffice is required (SYNBATCH_REQUIRE_LIBREOFFICE=1): apt-get install libreoffice-calc-nogui")
	}
	t.Skip("no LibreOffice (apt-get install libreoffice-calc-nogui)")
	return ""
}

// saveWithLibreOffice has LibreOffice Calc open the CSV at csvPath and save
// it beside it as format (xlsx, ods), with its own typing of the cells; the
// CSV is removed, so that only the sheet can be read. It returns the
// sheet's path.
func saveWithLibreOffice(t *testing.T, lo, csvPath, format string) string {
	t.Helper()
	dir := filepath.Dir(csvPath)
	// A private profile directory: LibreOffice must not touch the
	// caller's, and two runs must not share a lock.
	conv := exec.Command(lo, "-env:UserInstallation=file://"+filepath.Join(dir, "lo-profile"), "--headless",
		"--convert-to", format, "--infilter=CSV:44,34,76,1", "--outdir", dir, csvPath)
	conv.Env = append(os.Environ(), "HOME="+dir)
	if out, err := conv.CombinedOutput(); err != nil {
		t.Fatalf("LibreOffice conversion: %v\n%s", err, out)
	}
	sheet := strings.TrimSuffix(csvPath, ".csv") + "." + format
	if _, err := os.Stat(sheet); err != nil {
		t.Fatalf("LibreOffice wrote no %s: %v", format, err)
	}
	if err := os.Remove(csvPath); err != nil {
		t.Fatal(err)
	}
	return sheet
}

// TestLibreOfficeHRSheetOnboardsEveryField writes the HR export as CSV and has
// LibreOffice Calc itself save it as XLSX (its own typing: TRUE/FALSE become
// boolean cells, dates date cells), headers as HR writes them (User ID,
// Display Name, Email, Phone, Department, Date of Hire, Admin, Password).
// Phone is mapped, Department and Date of Hire ignored, national numbers read
// with --phone-region DE; the Email column on these upsert rows is the
// account's email.
func TestLibreOfficeHRSheetOnboardsEveryField(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	lo := soffice(t)
	dir := t.TempDir()
	people := hrPeople(uniq(t), hrStaff)

	var b strings.Builder
	b.WriteString("User ID,Display Name,Email,Phone,Department,Date of Hire,Admin,Password\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s,%q,%s,%s,%s,%s,%s,%s\n", p.local, p.display, p.email, p.phone, p.dept, p.hired,
			strings.ToUpper(fmt.Sprint(p.admin)), p.password)
	}
	xlsx := saveWithLibreOffice(t, lo, writeFile(t, dir, "staff.csv", b.String()), "xlsx")

	flags := []string{xlsx, "--map", "Phone=msisdns", "--ignore", "Department", "--ignore", "Date of Hire", "--phone-region", "DE"}
	// Without the flags, validate names each unknown header once, with the
	// flag that maps or ignores it, and no per-row cascade.
	r := e.synbatch(t, dir, "validate", xlsx)
	if r.code != 2 || strings.Count(r.stdout, "unknown column") != 3 || strings.Count(r.stdout, "\n") != 3 ||
		!strings.Contains(r.stdout, `:Phone: unknown column "Phone" (did you mean "msisdns"?)`) || !strings.Contains(r.stdout, "--ignore 'Date of Hire'") {
		t.Fatalf("validate without flags: exit %d, want 2 and one line per unknown header (3), Phone suggesting msisdns:\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.onboardHR(t, dir, people, flags...)
}

// TestEuropeanExcelCSVOnboardsEveryField feeds the CSV a German Excel saves
// ("CSV UTF-8"): a byte-order mark, ; between cells, CRLF line ends, WAHR
// and FALSCH, dates as 01.03.2024, German headers mapped by flags, and an
// Email header.
func TestEuropeanExcelCSVOnboardsEveryField(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	people := hrPeople(uniq(t), hrStaff)

	var b strings.Builder
	b.WriteString("\ufeffBenutzer-ID;Anzeigename;Email;Mobil;Abteilung;Eintrittsdatum;Admin;Kennwort\r\n")
	for _, p := range people {
		display := p.display
		if strings.Contains(display, ";") {
			display = `"` + display + `"`
		}
		admin := "FALSCH"
		if p.admin {
			admin = "WAHR"
		}
		y, m, d := p.hired[:4], p.hired[5:7], p.hired[8:]
		fmt.Fprintf(&b, "%s;%s;%s;%s;%s;%s.%s.%s;%s;%s\r\n", p.local, display, p.email, p.phone, p.dept, d, m, y, admin, p.password)
	}
	path := writeFile(t, dir, "mitarbeiter.csv", b.String())
	flags := []string{path, "--map", "Benutzer-ID=user_id", "--map", "Anzeigename=displayname", "--map", "Mobil=msisdns",
		"--map", "Kennwort=password", "--ignore", "Abteilung", "--ignore", "Eintrittsdatum", "--phone-region", "DE"}
	e.onboardHR(t, dir, people, flags...)
}
