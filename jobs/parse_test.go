package jobs

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synbatch/synbatch/formats"
)

func row(kv ...string) formats.Row {
	r := formats.Row{Num: 7, Fields: map[string]formats.Field{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i]] = formats.Field{Column: kv[i], Value: kv[i+1]}
	}
	return r
}

func TestNormaliseUserID(t *testing.T) {
	long := strings.Repeat("a", 250)
	for _, c := range []struct{ in, server, want, err string }{
		{"alice", "hs.test", "@alice:hs.test", ""},
		{"@alice:hs.test", "hs.test", "@alice:hs.test", ""},
		{"@alice:hs.test", "", "@alice:hs.test", ""},
		{"alice", "", "alice", ""},
		{"a/b=c.d-e+f_g", "hs", "@a/b=c.d-e+f_g:hs", ""},
		{"Alice", "hs", "", "may hold only"},
		{"_alice", "hs", "", "may not start with _"},
		{"12345", "hs", "", "all digits"},
		{"@alice:other", "hs", "", "not to this server"},
		{"@alice", "hs", "", "@localpart:server"},
		{"al:ice", "hs", "", "starts with @"},
		{long, "hs.test", "", "at most 255 bytes"},
		{"@x:bad server", "", "", "not a server name"},
	} {
		got, err := NormaliseUserID(c.in, c.server)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseRow(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	j, probs := Parse(row("user_id", "alice", "emails", " A@Example.ORG ; b@example.org;a@example.org", "msisdns", "+447700900123",
		"external_ids", "oidc:sub:with:colons; saml:x", "admin", "YES", "password", "pw", "clear", "avatar_url"), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	pr := j.payload.(*profile)
	if j.UserID != "@alice:hs" || j.Action != Upsert || !*pr.Admin || !j.HasPassword() || *pr.AvatarURL != "" {
		t.Fatalf("job %+v", j)
	}
	if strings.Join(pr.Emails.Values, ",") != "a@example.org,b@example.org" || pr.Msisdns.Values[0] != "447700900123" {
		t.Fatalf("lists %v %v", pr.Emails, pr.Msisdns)
	}
	if len(pr.ExternalIDs) != 2 || pr.ExternalIDs[0].AuthProvider != "oidc" || pr.ExternalIDs[0].ExternalID != "sub:with:colons" {
		t.Fatalf("external ids %v", pr.ExternalIDs)
	}
}

func TestParseProblems(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"displayname", "x"}, "m.csv:7:user_id: missing"},
		{[]string{"user_id", "a", "action", "nuke"}, `m.csv:7:action: unknown action "nuke"`},
		{[]string{"user_id", "a", "avatar_url", "https://x/y.png"}, "m.csv:7:avatar_url: \"https://x/y.png\" is not an MXC URI"},
		{[]string{"user_id", "a", "msisdns", "4.47E+11"}, "dropped digits"},
		{[]string{"user_id", "a", "msisdns", "44-77"}, "--phone-region"},
		{[]string{"user_id", "a", "user_type", "robot"}, "unknown user type"},
		{[]string{"user_id", "a", "external_ids", "nocolon"}, "want provider:id"},
		{[]string{"user_id", "a", "displayname", "x", "clear", "displayname"}, "both set and listed"},
		{[]string{"user_id", "a", "clear", "password"}, `cannot clear "password"`},
		{[]string{"user_id", "a", "logout_devices", "perhaps"}, "not a boolean"},
		{[]string{"user_id", "a", "displayname", strings.Repeat("x", 257)}, "longer than 256"},
	} {
		_, probs := Parse(row(c.kv...), opt)
		var got []string
		for _, p := range probs {
			got = append(got, p.Error())
		}
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%v: problems %q, want %q", c.kv, got, c.want)
		}
	}
}

func TestExcelExponentWithAllDigitsIsAccepted(t *testing.T) {
	for in, want := range map[string]string{"4.47470274584E+11": "447470274584", "447470274584": "447470274584"} {
		got, err := canonicalMsisdn(in, "")
		if err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
}

func TestKeyIgnoresThePasswordsValue(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	a, _ := Parse(row("user_id", "a", "password", "one", "emails", "x@y.org"), opt)
	b, _ := Parse(row("user_id", "a", "password", "two", "emails", "x@y.org"), opt)
	c, _ := Parse(row("user_id", "a", "emails", "x@y.org"), opt)
	g, _ := Parse(row("user_id", "a", "password", "generate", "emails", "x@y.org"), opt)
	if a.Key != b.Key || a.Key == c.Key || a.Key == g.Key || strings.Contains(a.Key, "one") {
		t.Fatalf("keys %s %s %s %s", a.Key, b.Key, c.Key, g.Key)
	}
	// The options that give cells their meaning are part of the identity.
	opt.ReplaceLists = true
	if d, _ := Parse(row("user_id", "a", "password", "one", "emails", "x@y.org"), opt); d.Key == a.Key {
		t.Fatal("--replace-lists does not change the key")
	}
	// Nor are defaults, given or not.
	if f, _ := Parse(row("user_id", "a", "password", "one", "emails", "x@y.org"), ParseOptions{File: "m.csv", ServerName: "hs", DefaultAction: Upsert, MatchBy: "user_id"}); f.Key != a.Key {
		t.Fatal("spelt-out defaults change the key")
	}
	// The row's position is not.
	r := row("user_id", "a", "password", "one", "emails", "x@y.org")
	r.Num = 99
	if e, _ := Parse(r, ParseOptions{File: "m.csv", ServerName: "hs"}); e.Key != a.Key {
		t.Fatal("the row number changes the key")
	}
}

func TestUnknownColumns(t *testing.T) {
	probs := CheckColumns("m.csv", []string{"user_id", "emial", "creation_ts"})
	if len(probs) != 1 || !strings.Contains(probs[0].Error(), `m.csv:1:emial: unknown column "emial"`) {
		t.Fatalf("%v", probs)
	}
}

// TestKnownColumnsAreListedOnce: an HR sheet with several unknown headers
// gets one problem per header, and the list of known columns once, in the
// first of them.
func TestKnownColumnsAreListedOnce(t *testing.T) {
	probs := CheckColumns("m.csv", []string{"user_id", "Department", "Date of Hire", "Cost Centre"})
	if len(probs) != 3 {
		t.Fatalf("%d problems, want one per unknown header: %v", len(probs), probs)
	}
	lists := 0
	for _, p := range probs {
		lists += strings.Count(p.Error(), "(columns: ")
	}
	if lists != 1 || !strings.Contains(probs[0].Error(), "(columns: user_id, ") {
		t.Errorf("the known columns are listed %d times, want once, in the first problem: %v", lists, probs)
	}
}

func TestProblemsQuoteLongValuesShort(t *testing.T) {
	huge := strings.Repeat("x", 5<<20) // a 5 MiB cell
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	for _, kv := range [][]string{
		{"user_id", huge},
		{"user_id", "@" + huge + ":hs"},
		{"user_id", "a", "action", huge},
		{"user_id", "a", "user_type", huge},
		{"user_id", "a", "external_ids", huge},
		{"user_id", "a", "emails", huge},
		{"user_id", "a", "msisdns", huge},
		{"user_id", "a", "admin", huge},
		{"user_id", "a", "clear", huge},
		{"user_id", "a", "action", "join-rooms", "rooms", huge},
		{"user_id", "a", "action", "set-ratelimit", "messages_per_second", huge},
		{"action", "block", "room_id", huge},
		{"action", "purge-history", "room_id", "!r:hs", "before", huge},
	} {
		_, probs := Parse(row(kv...), opt)
		if len(probs) == 0 {
			t.Errorf("%.40q: no problem", kv)
		}
		shortened := false
		for _, p := range probs {
			msg := p.Error()
			if len(msg) > 600 {
				t.Errorf("%s: problem of %d bytes, want the value shortened: %.300s", kv[len(kv)-2], len(msg), msg)
			}
			shortened = shortened || strings.Contains(msg, "…(")
		}
		if !shortened {
			t.Errorf("%s: no problem quotes the value shortened: %v", kv[len(kv)-2], probs)
		}
	}
	probs := CheckColumns("m.csv", []string{huge})
	// The message lists every known column, which grows with the actions:
	// only the rest of it must stay short.
	if len(probs) != 1 || len(probs[0].Error())-len(strings.Join(KnownColumns(), ", ")) > 600 {
		t.Errorf("unknown column: %d problems, the first %d bytes", len(probs), len(probs[0].Error()))
	}
}

// TestExportedDisplaynamesReadBackExactly writes display names that start or
// end with white space the way export users does, reads them back as a
// manifest, and expects the very same names: otherwise plan would update
// every such user to the trimmed name.
func TestExportedDisplaynamesReadBackExactly(t *testing.T) {
	names := []string{"\tTab", "\rCarriage", " Space", "\u00a0Nbsp", "Trailing ", "Trailing\u00a0", "\nNewline", "'quoted", "=1+2", "plain", " ", "two  inner  spaces"}
	for _, ext := range []string{".csv", ".tsv", ".xlsx", ".jsonl"} {
		t.Run(ext, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users"+ext)
			w, err := formats.Create(path, []string{"user_id", "displayname"})
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range names {
				if err := w.Write([]any{fmt.Sprintf("@u%d:hs", i), n}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := formats.Open(path, formats.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i, want := range names {
				row, err := r.Next()
				if err != nil {
					t.Fatalf("%q: %v", want, err)
				}
				j, probs := Parse(row, ParseOptions{File: path, ServerName: "hs"})
				if len(probs) > 0 {
					t.Errorf("%q: %v", want, probs)
					continue
				}
				if pr := j.payload.(*profile); j.UserID != fmt.Sprintf("@u%d:hs", i) || pr.Displayname == nil {
					t.Errorf("displayname %q read back as %v for %s", want, pr.Displayname, j.UserID)
				} else if *pr.Displayname != want {
					t.Errorf("displayname %q read back as %q", want, *pr.Displayname)
				}
			}
		})
	}
}

// TestPlainCellsAreStillTrimmed keeps what a person's spreadsheet relies on:
// spaces typed around an id, a boolean or a number do not matter.
func TestPlainCellsAreStillTrimmed(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	j, probs := Parse(row("user_id", " alice ", "admin", " yes ", "emails", " a@example.org ", "user_type", " bot "), opt)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if pr := j.payload.(*profile); j.UserID != "@alice:hs" || !*pr.Admin || pr.Emails.Values[0] != "a@example.org" || *pr.UserType != "bot" {
		t.Fatalf("job %+v", j)
	}
}

// TestRowKeyKeepsLegacyKeysAtDefaults: with options at their defaults the
// per-row key is the key journals written before it hold, so that their
// finished rows are found; an option a row cannot use leaves its key alone.
func TestRowKeyKeepsLegacyKeysAtDefaults(t *testing.T) {
	row := formats.Row{Num: 2, Fields: map[string]formats.Field{"user_id": {Value: "alice"}, "action": {Value: "reset-password"}, "password": {Value: "x-secret-1"}}}
	def := ParseOptions{ServerName: "hs.test"}
	if RowKey(row, def) != LegacyRowKey(row, def) {
		t.Fatal("the key of a row read with default options changed")
	}
	flipped := def
	flipped.DefaultAction, flipped.GeneratePasswords, flipped.PhoneRegion, flipped.ReplaceLists, flipped.AuthProvider, flipped.MatchBy =
		Lock, true, "GB", true, "oidc", "email"
	if RowKey(row, flipped) != RowKey(row, def) {
		t.Fatal("options this row cannot use changed its key")
	}
}
