package jobs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/synbatch/synbatch/formats"
)

// Values as spreadsheets write them: phone numbers as people type them and
// booleans as a localised Excel writes them to CSV.

// boolWords are the words read as booleans: English, and TRUE/FALSE as a
// German, French, Spanish, Italian and Dutch Excel writes them to CSV.
var boolWords = map[string]bool{
	"true": true, "yes": true, "1": true,
	"false": false, "no": false, "0": false,
	"wahr": true, "falsch": false, // de
	"vrai": true, "faux": false, // fr
	"verdadero": true, "falso": false, // es; falso is also it
	"vero": true,                  // it
	"waar": true, "onwaar": false, // nl
}

// ParseBool reads true/false/yes/no/1/0 in any case, and TRUE/FALSE as a
// localised Excel writes them (WAHR/FALSCH, VRAI/FAUX, VERDADERO/FALSO,
// VERO/FALSO, WAAR/ONWAAR).
func ParseBool(v string) (bool, error) {
	if b, ok := boolWords[strings.ToLower(strings.TrimSpace(v))]; ok {
		return b, nil
	}
	return false, fmt.Errorf("%s is not a boolean (want true/false, yes/no or 1/0)", formats.Quote(v))
}

// CheckPhoneRegion validates a --phone-region value: a region libphonenumber
// knows, such as GB or DE.
func CheckPhoneRegion(r string) error {
	if r == "" || phonenumbers.GetCountryCodeForRegion(strings.ToUpper(r)) == 0 {
		return fmt.Errorf("--phone-region %q: want a two-letter region code such as GB, DE or FR (ISO 3166)", r)
	}
	return nil
}

// canonicalMsisdn puts a phone number in the form Synapse stores: E.164
// digits without the +. Digits alone are E.164 already (as today, and as an
// Excel number cell gives them), whatever the region. Anything else is read
// by libphonenumber: +44 7700 900124, 0044 …, (0), dots, dashes and spaces;
// a national number (07700 900125) only with region, which says how to read
// it.
func canonicalMsisdn(v, region string) (string, error) {
	v = strings.TrimSpace(v)
	if exponentRE.MatchString(v) {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f == float64(int64(f)) && len(strconv.FormatInt(int64(f), 10)) <= 15 && sigDigits(v) >= len(strconv.FormatInt(int64(f), 10)) {
			v = strconv.FormatInt(int64(f), 10)
		} else {
			return "", fmt.Errorf("%s: the spreadsheet stored this phone number as a number and dropped digits; format the column as text and enter the number again", formats.Quote(v))
		}
	}
	in, international := v, strings.HasPrefix(v, "+")
	// Digits alone are E.164 already (Synapse's own form, an Excel number
	// cell, an export): checked, never rewritten. libphonenumber would drop
	// a 0 after the country code (440180… → 44180…), changing the address.
	asIs := allDigits(v) && v != "" && v[0] != '0'
	switch {
	case strings.HasPrefix(v, "00"):
		// 00 is the international prefix of most of the world; read it as +
		// whatever the region (libphonenumber knows it only from one).
		in, international = "+"+v[2:], true
	case asIs:
		in, international = "+"+v, true
	}
	if !international && region == "" {
		if !hasDigit(v) {
			return "", fmt.Errorf("%s is not a phone number", formats.Quote(v))
		}
		return "", fmt.Errorf("%s: a national number; write it with its country code (+44 7700 900123) or say how to read it with --phone-region (e.g. GB)", formats.Quote(v))
	}
	n, err := phonenumbers.Parse(in, cmpRegion(region))
	if err != nil {
		switch err {
		case phonenumbers.ErrInvalidCountryCode:
			return "", fmt.Errorf("%s: unknown country code", formats.Quote(v))
		case phonenumbers.ErrTooShortNSN, phonenumbers.ErrTooShortAfterIDD:
			return "", fmt.Errorf("%s: too short for a phone number", formats.Quote(v))
		case phonenumbers.ErrNumTooLong:
			return "", fmt.Errorf("%s: too long for a phone number", formats.Quote(v))
		}
		return "", fmt.Errorf("%s is not a phone number", formats.Quote(v))
	}
	// libphonenumber's length check for the number's country. Its stricter
	// IsValidNumber also refuses numbers in no allocated range, which
	// includes Ofcom's 07700 900xxx set aside for examples and tests.
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "", fmt.Errorf("%s: unknown country code", formats.Quote(v))
	case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return "", fmt.Errorf("%s: too short for a phone number of country code +%d", formats.Quote(v), n.GetCountryCode())
	case phonenumbers.TOO_LONG:
		return "", fmt.Errorf("%s: too long for a phone number of country code +%d", formats.Quote(v), n.GetCountryCode())
	default:
		return "", fmt.Errorf("%s: not a possible length for a phone number of country code +%d", formats.Quote(v), n.GetCountryCode())
	}
	if asIs {
		return v, nil
	}
	return strings.TrimPrefix(phonenumbers.Format(n, phonenumbers.E164), "+"), nil
}

func cmpRegion(r string) string {
	if r == "" {
		return "ZZ"
	}
	return strings.ToUpper(r)
}

func hasDigit(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// sigDigits counts the digits written in a mantissa like 4.47470274584E+11.
func sigDigits(v string) int {
	mant, _, _ := strings.Cut(strings.ToLower(v), "e")
	return len(strings.TrimLeft(strings.ReplaceAll(mant, ".", ""), "0"))
}
