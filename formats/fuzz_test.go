package formats

import (
	"archive/zip"
	"bytes"
	"os"
	"testing"
)

// The fuzz targets only require that readers never panic or loop: every
// input ends in io.EOF or a fatal error, with well-formed rows on the way.
// Without -fuzz they run their seeds as ordinary tests.

func FuzzCSV(f *testing.F) {
	for _, seed := range []string{
		"",
		"\xEF\xBB\xBFuser_id,displayname\nalice,Alice\n",
		"a;b;c\n1;2;3\n\n4;5;6;7\n",
		"a\tb\n1\t2\r\n",
		"a,b\n\"multi\nline\",x\n,\n",
		"a,,a\n1,2,3\n",
		"a,b\n1,x\"y\n\"open\n",
		"\xFF\xFEa",
		"a,b\n\xff,\xfe\n",
		"\"a\nb\";c\n\n\n1;2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := newCSVReader(bytes.NewReader([]byte(in)), "fuzz.csv", 0)
		if err != nil {
			return
		}
		checkInvariants(t, r, 4*len(in)+10)
	})
}

func FuzzJSONL(f *testing.F) {
	for _, seed := range []string{
		"",
		`{"user_id": "alice", "emails": ["a@example.org"], "admin": true}`,
		`{"external_ids": [{"auth_provider": "oidc", "external_id": "x"}], "msisdns": [447700900001]}`,
		"\xEF\xBB\xBF{\"a\": 1}\r\n\n[1]\nnull\n{\"a\": {\"b\": 1}}\n",
		`{"a": 1} {"b": 2}`,
		`{"a": "` + string(make([]byte, 80)) + `"}`,
		"{\"a\":\n{\"\": 1}\n{\"a\": \"\xff\"}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := newJSONLReader(bytes.NewReader([]byte(in)), "fuzz.jsonl", 64)
		checkInvariants(t, r, 4*len(in)+10)
	})
}

func FuzzXLSX(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("PK\x03\x04 not really a zip"))
	for _, sheet := range []cells{
		usersSheet(),
		{"A1": "a", "B1": "a", "D1": "d", "A2": 1, "C2": rawNumber("4.4E+11"), "F9": "x"},
		{"C3": "User_ID", "C5": "alice"},
	} {
		f.Add(xlsxBytes(f, sheet))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// A small limit: a fuzzed zip may declare huge parts.
		zr, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		r, err := newXLSXReader(zr, "fuzz.xlsx", "", 16<<20)
		if err != nil {
			return
		}
		defer r.Close()
		checkInvariants(t, r, 1<<21)
	})
}

// xlsxBytes returns a one-sheet workbook as bytes.
func xlsxBytes(tb testing.TB, sheet cells) []byte {
	tb.Helper()
	b, err := os.ReadFile(writeXLSX(tb, []string{"Sheet1"}, map[string]cells{"Sheet1": sheet}))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
