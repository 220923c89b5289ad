package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/synapse"
)

// hostileUser is an account whose user-set values hold what a spreadsheet
// or a list cell could misread.
type hostileUser struct {
	local, display string
	emails         []string
	ids            []synapse.ExternalID
}

func hostileUsers(p string) []hostileUser {
	return []hostileUser{
		{p + "semi", "x;=1+41;", []string{p + "=1+41@example.org"}, []synapse.ExternalID{{AuthProvider: "oidc", ExternalID: p + "x;=1+41;"}}},
		{p + "lines", "line\n=1+1", nil, []synapse.ExternalID{{AuthProvider: "cas", ExternalID: p + "a,\"b\";c"}, {AuthProvider: "oidc", ExternalID: p + "\\;back"}}},
		{p + "quote", " spaced, \"quoted\" ", []string{"-" + p + "@example.org"}, nil},
		{p + "plus", "+41", nil, []synapse.ExternalID{{AuthProvider: "oidc-keycloak", ExternalID: "@" + p + ";-2"}}},
		{p + "at", "@me;'=b", []string{"+" + p + "@example.org"}, nil},
		{p + "minus", "-1,=2\n@x", nil, []synapse.ExternalID{{AuthProvider: "oidc", ExternalID: "=" + p}}},
	}
}

// TestExportOfHostileValuesAppliesUnchangedAndRunsNoFormula is issue 19
// class 5's acceptance against the real Synapse: users whose display names,
// emails and external ids hold ';', ',', quotes, line breaks, leading
// = + - @ and surrounding spaces are exported (CSV and XLSX); a plan of
// each export is all unchanged; applying the unedited CSV leaves every
// account as it was (read back from Synapse: no mapping added, no name
// changed); and the CSV, opened by LibreOffice with ',' and with ';' as
// separator, holds no formula.
func TestExportOfHostileValuesAppliesUnchangedAndRunsNoFormula(t *testing.T) {
	e := realServer(t)
	t.Parallel()
	p := uniq(t)
	users := hostileUsers(p)
	ctx := context.Background()
	for _, u := range users {
		body := map[string]any{"displayname": u.display, "external_ids": u.ids}
		if len(u.emails) > 0 {
			var tp []map[string]string
			for _, m := range u.emails {
				tp = append(tp, map[string]string{"medium": "email", "address": m})
			}
			body["threepids"] = tp
		}
		if u.ids == nil {
			body["external_ids"] = []synapse.ExternalID{}
		}
		if _, err := e.client.PutUser(ctx, e.id(u.local), body); err != nil {
			t.Fatalf("create %s: %v", u.local, err)
		}
	}
	before := map[string]*synapse.User{}
	for _, u := range users {
		before[u.local] = e.user(t, e.id(u.local))
		if got := *before[u.local].Displayname; got != u.display {
			t.Fatalf("Synapse keeps %q as %q: the test's values must be ones it stores", u.display, got)
		}
	}
	dir := t.TempDir()
	want := fmt.Sprintf("%d rows: %d unchanged", len(users), len(users))
	for _, ext := range []string{"csv", "xlsx"} {
		out := filepath.Join(dir, "users."+ext)
		if r := e.synbatch(t, dir, "export", "users", "--user-id", p, "--out", out); r.code != 0 {
			t.Fatalf("export %s: exit %d\n%s%s", ext, r.code, r.stdout, r.stderr)
		}
		if plan := e.synbatch(t, dir, "plan", out); plan.code != 0 || !strings.Contains(plan.stdout, want) {
			raw, _ := os.ReadFile(out)
			t.Fatalf("plan of the %s export: exit %d, want %q\n%s%s\nthe export:\n%s", ext, plan.code, want, plan.stdout, plan.stderr, raw)
		}
	}
	csvOut := filepath.Join(dir, "users.csv")
	if r := e.synbatch(t, dir, "apply", csvOut); r.code != 0 {
		t.Fatalf("apply of the unedited export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, u := range users {
		got := e.user(t, e.id(u.local))
		if *got.Displayname != u.display {
			t.Errorf("%s: display name %q after apply, want %q", u.local, *got.Displayname, u.display)
		}
		if !slices.Equal(got.ExternalIDs, before[u.local].ExternalIDs) {
			t.Errorf("%s: external ids %v after apply, were %v", u.local, got.ExternalIDs, before[u.local].ExternalIDs)
		}
		if !slices.Equal(got.Threepids, before[u.local].Threepids) {
			t.Errorf("%s: threepids %v after apply, were %v", u.local, got.Threepids, before[u.local].Threepids)
		}
	}
	libreOfficeHasNoFormula(t, csvOut)
}

// libreOfficeHasNoFormula converts csv with LibreOffice, once with ',' and
// once with ';' as separator, and fails on any formula cell in the sheet.
func libreOfficeHasNoFormula(t *testing.T, csv string) {
	t.Helper()
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Fatalf("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui")
	}
	formula := regexp.MustCompile(`table:formula="[^"]*"`)
	for sep, code := range map[string]string{",": "44", ";": "59"} {
		out := t.TempDir()
		// Its own profile, so parallel conversions do not share one.
		cmd := exec.Command(soffice, "-env:UserInstallation=file://"+filepath.Join(out, "profile"), "--headless",
			"--infilter=CSV:"+code+",34,76,1", "--convert-to", "fods", "--outdir", out, csv)
		cmd.Env = append(os.Environ(), "HOME="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("soffice with %q: %v\n%s", sep, err, b)
		}
		sheet, err := os.ReadFile(filepath.Join(out, strings.TrimSuffix(filepath.Base(csv), ".csv")+".fods"))
		if err != nil {
			t.Fatalf("soffice with %q wrote no sheet: %v", sep, err)
		}
		if f := formula.FindAllString(string(sheet), -1); len(f) > 0 {
			t.Errorf("LibreOffice with %q as separator reads formulas: %v", sep, f)
		}
	}
}
