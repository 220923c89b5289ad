package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/export"
)

// TestErasureLeavesNothingOfThePerson is the data subject request of
// docs/erasure.md on the real Synapse: a person wrote in three rooms and
// left one, uploaded four files and has an SSO mapping (looked up once,
// so Synapse's cache holds it). One deactivate row with erase, redact,
// media=delete and clear=external_ids; its confirmation names every
// effect. Read back from the server: each of their messages and joins in
// all three rooms is named by exactly one redaction and reads empty to
// another member, none of the four files is served, their record holds no
// mapping and is erased. Then the same subject mapped to a new account
// plans a create, not a conflict, and the apply gives it the mapping.
func TestErasureLeavesNothingOfThePerson(t *testing.T) {
	t.Parallel()
	e := realServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := uniq(t)
	owner := e.roomUser(t, p+"-owner")
	person := e.roomUser(t, p+"-person")
	idp, sub := "oidc", "sub|"+p // a provider the server lists
	mustPut(t, e, person.id, map[string]any{"external_ids": []map[string]string{{"auth_provider": idp, "external_id": sub}}})
	if got := e.idOwner(t, idp, sub); got != person.id {
		t.Fatalf("the mapping names %q, want %s", got, person.id)
	}
	var rooms []string
	for _, n := range []string{"Team", "Project", "Left"} {
		r := e.roomOf(t, owner, n+" "+p, "public_chat")
		rooms = append(rooms, r)
		if err := e.client.Join(ctx, r, person.id); err != nil {
			t.Fatal(err)
		}
		e.roomSend(t, person, r, 2)
	}
	e.mustCall(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(rooms[2])+"/leave", person.token, map[string]any{}, nil)
	e.roomUpload(t, person, 4, 1024)
	media := e.media(t, person.id)
	if len(media) != 4 {
		t.Fatalf("%d uploads, want 4", len(media))
	}

	// Step 1 of the guide: the export, with a page the person can read.
	if r := e.synbatch(t, dir, "export", "data", person.id, "--events", "--events-scan-rooms", "--media", "--out", "dsr"); r.code != 0 {
		t.Fatalf("export data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bdir := filepath.Join(dir, "dsr", dataReadIndex(t, filepath.Join(dir, "dsr"))[person.id])
	if _, err := export.VerifyBundle(bdir); err != nil {
		t.Fatalf("the bundle's checksums: %v", err)
	}
	index := readFile(t, filepath.Join(bdir, "index.html"))
	for _, want := range []string{"Team " + p, "Project " + p, "Left " + p, ">leave<", ">f.bin<", "application/octet-stream"} {
		if !strings.Contains(index, want) {
			t.Errorf("the bundle's index.html lacks %q", want)
		}
	}
	for _, m := range media {
		if !strings.Contains(index, `href="media/`+m.MediaID+`.bin"`) {
			t.Errorf("the bundle's index.html does not link upload %s as media/%s.bin", m.MediaID, m.MediaID)
		}
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).MatchString(index) || strings.Contains(index, "<script") {
		t.Errorf("the bundle's index.html has no ISO 8601 time, or a script:\n%s", index)
	}
	if !strings.Contains(readFile(t, filepath.Join(bdir, "manifest.json")), `"path": "index.html"`) {
		t.Error("manifest.json has no checksum of index.html")
	}

	writeFile(t, dir, "erase.csv", fmt.Sprintf("action,user_id,erase,redact,media,clear\ndeactivate,%s,true,true,delete,external_ids\n", person.id))
	r := e.synbatch(t, dir, "apply", "erase.csv", "--yes")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"deactivate 1 user (erasing row 2 " + person.id + ")", "redact their events in 3 rooms",
		"delete 4 media files", "remove 1 SSO mapping"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the confirmation does not say %q:\n%s", want, r.stderr)
		}
	}

	for _, room := range rooms {
		for id, n := range e.redactionsOf(t, room, map[string]bool{person.id: true}) {
			if n != 1 {
				t.Errorf("room %s: event %s named by %d redactions, want 1", room, id, n)
			}
		}
		for _, ev := range e.sentBy(t, owner, room, person.id) {
			if content, _ := ev["content"].(map[string]any); ev["type"] == "m.room.message" && content["body"] != nil {
				t.Errorf("room %s: another member still reads %q", room, content["body"])
			}
		}
	}
	_, server, _ := strings.Cut(person.id, ":")
	for _, m := range media {
		status, _ := e.call(t, http.MethodGet, "/_matrix/client/v1/media/download/"+server+"/"+m.MediaID, owner.token, nil, nil)
		if status == http.StatusOK {
			t.Errorf("upload %s is still served", m.MediaID)
		}
	}
	if left := e.media(t, person.id); len(left) != 0 {
		t.Errorf("%d uploads left", len(left))
	}
	u := e.mustUser(t, person.id)
	if !bool(u.Deactivated) || !bool(u.Erased) || len(u.ExternalIDs) != 0 {
		t.Fatalf("after the erasure: deactivated %v, erased %v, external ids %v", u.Deactivated, u.Erased, u.ExternalIDs)
	}
	t.Logf("Synapse's lookup of the cleared mapping now names %q", e.idOwner(t, idp, sub))

	// The run's report names the admin who ran it and the person erased.
	admin, err := e.client.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep := e.synbatch(t, dir, "journal", "report", "erase.csv.journal.jsonl", "--out", "report.html"); rep.code != 0 {
		t.Fatalf("report: exit %d\n%s", rep.code, rep.stderr)
	}
	page := readFile(t, filepath.Join(dir, "report.html"))
	for _, want := range []string{`<td class="actor">` + admin + `</td>`, `<td>deactivate</td><td>` + person.id + `</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %s", want)
		}
	}

	// The same person re-hired: their subject goes to a new account.
	hired := e.id(p + "-rehired")
	writeFile(t, dir, "hire.csv", fmt.Sprintf("action,user_id,external_ids\nupsert,%s,%s:%s\n", hired, idp, sub))
	plan := e.synbatch(t, dir, "plan", "hire.csv", "--output", "json")
	if plan.code != 0 || strings.Contains(plan.stdout, "conflict") {
		t.Fatalf("plan: exit %d\n%s%s", plan.code, plan.stdout, plan.stderr)
	}
	if st := e.applyJSON(t, dir, 0, "hire.csv"); st.Outcomes["done"] != 1 {
		t.Fatalf("apply: %+v", st)
	}
	if h := e.mustUser(t, hired); len(h.ExternalIDs) != 1 || h.ExternalIDs[0].ExternalID != sub {
		t.Fatalf("the new account's external ids: %v", h.ExternalIDs)
	}
}
