package jobs

import (
	"strings"
	"testing"
)

func TestPhoneNumbersAsPeopleTypeThem(t *testing.T) {
	for _, c := range []struct{ in, region, want string }{
		{"+44 7700 900124", "", "447700900124"},
		{"0044 7700 900124", "", "447700900124"},
		{"+44 (0)7700 900124", "", "447700900124"},
		{"+44.7700.900.124", "", "447700900124"},
		{"+44-7700-900-124", "", "447700900124"},
		{"07700 900125", "GB", "447700900125"},
		{"07700 900125", "gb", "447700900125"},
		{"+33 6 12 34 56 78", "GB", "33612345678"},
		// E.164 digits, as today and as an Excel number cell gives them,
		// whatever the region says.
		{"447700900123", "", "447700900123"},
		{"447700900123", "DE", "447700900123"},
		{"+447700900123", "", "447700900123"},
		{"4.47470274584E+11", "", "447470274584"},
		// Digits alone are kept as written, even where libphonenumber
		// would drop a 0 after the country code.
		{"440180610287", "", "440180610287"},
		{"440638700000", "GB", "440638700000"},
	} {
		got, err := canonicalMsisdn(c.in, c.region)
		if err != nil || got != c.want {
			t.Errorf("%q region %q: got %q, %v; want %q", c.in, c.region, got, err, c.want)
		}
	}
}

func TestPhoneNumbersRefusedWithAReason(t *testing.T) {
	for _, c := range []struct{ in, region, want string }{
		{"07700 900125", "", "--phone-region"},
		{"7700 900125", "", "--phone-region"},
		{"+44 7700", "", "too short"},
		{"+44 7700 900124 1234 5", "", "too long"},
		{"+999 1234 5678", "", "country code"},
		{"4.47E+11", "", "dropped digits"},
		{"call me", "GB", "not a phone number"},
		{"", "GB", "not a phone number"},
	} {
		_, err := canonicalMsisdn(c.in, c.region)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q region %q: error %v, want it to say %q", c.in, c.region, err, c.want)
		}
	}
}

func TestPhoneRegionIsChecked(t *testing.T) {
	if err := CheckPhoneRegion("GB"); err != nil {
		t.Error(err)
	}
	if err := CheckPhoneRegion("gb"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"UK", "XX", "44"} {
		if err := CheckPhoneRegion(bad); err == nil || !strings.Contains(err.Error(), "--phone-region") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestPhoneRegionEntersTheKeyOnlyWhenGiven(t *testing.T) {
	opt := ParseOptions{File: "m.csv", ServerName: "hs"}
	r := row("user_id", "a", "msisdns", "07700 900125")
	// Without the flag a row keeps the key it had before the flag existed,
	// so journals written then still resume.
	before := RowKey(r, opt)
	if before != "ac8b4ca7f8a7254ee5e5704fa0314cb1" {
		t.Fatalf("key without --phone-region changed: %s", before)
	}
	opt.PhoneRegion = "GB"
	gb := RowKey(r, opt)
	opt.PhoneRegion = "gb"
	if gb == before || RowKey(r, opt) != gb {
		t.Fatalf("keys %s %s %s", before, gb, RowKey(r, opt))
	}
	opt.PhoneRegion = "FR"
	if RowKey(r, opt) == gb {
		t.Fatal("the region does not change the key")
	}
	j, probs := Parse(r, ParseOptions{File: "m.csv", ServerName: "hs", PhoneRegion: "GB"})
	if len(probs) > 0 || j.payload.(*profile).Msisdns.Values[0] != "447700900125" {
		t.Fatalf("%v %v", j, probs)
	}
}

func TestLocalisedExcelBooleans(t *testing.T) {
	for in, want := range map[string]bool{
		"WAHR": true, "FALSCH": false, "VRAI": true, "FAUX": false, "VERDADERO": true, "FALSO": false,
		"VERO": true, "WAAR": true, "ONWAAR": false, "wahr": true, "TRUE": true, "no": false, "1": true,
	} {
		got, err := ParseBool(in)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := ParseBool("ja"); err == nil {
		t.Error("ja read as a boolean")
	}
}

// TestExportedDateColumnsAreReadOnly: the columns export users adds for
// dates are accepted and ignored, like creation_ts.
func TestExportedDateColumnsAreReadOnly(t *testing.T) {
	cols := []string{"user_id", "creation_ts", "created", "last_seen", "last_seen_ts"}
	if probs := CheckColumns("m.csv", cols); len(probs) > 0 {
		t.Fatal(probs)
	}
	j, probs := Parse(row("user_id", "a", "displayname", "A", "creation_ts", "1769853600", "created", "2026-01-31T10:00:00Z",
		"last_seen", "2026-06-01T10:00:00Z", "last_seen_ts", "1780308000123"), ParseOptions{File: "m.csv", ServerName: "hs"})
	if len(probs) > 0 || *j.payload.(*profile).Displayname != "A" {
		t.Fatalf("%v %v", j, probs)
	}
}
