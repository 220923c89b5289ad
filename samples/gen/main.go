// Command gen writes the sample manifests samples/users.csv,
// samples/users.xlsx and samples/users.jsonl from one table, so the three
// files always hold the same five users for the server synbatch.test.
//
// Run it from the repository root after changing the table:
//
//	go run ./samples/gen
//
// The output is deterministic, so regenerating unchanged data leaves the
// files byte for byte the same.
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// user is one sample account. Some ids are bare localparts and some full
// Matrix ids, as people write them in real manifests.
type user struct {
	id          string
	displayname string
	password    string
	emails      []string
	msisdn      int64 // E.164 digits from the UK's drama range; 0 for none
	externalIDs [][2]string
	admin       bool
}

// users returns the sample table.
func users() []user {
	return []user{
		{"alice", "Alice Sample", "Sample-Alice-7fK2!q9v", []string{"alice@example.org"},
			447700900101, [][2]string{{"oidc", "alice-sub-1"}}, true},
		{"@bob:synbatch.test", "Bob Sample", "Sample-Bob-m4X8#t2r", []string{"bob@example.org", "bob.work@example.org"},
			447700900102, [][2]string{{"oidc", "bob-sub-2"}}, false},
		{"carol", "Carol Sample", "Sample-Carol-Z9p3$w6n", []string{"carol@example.org"},
			447700900103, [][2]string{{"oidc", "carol-sub-3"}}, false},
		{"@dave:synbatch.test", "Dave Sample", "Sample-Dave-h6V1%c8s", []string{"dave@example.org"},
			0, [][2]string{{"oidc", "dave-sub-4"}}, false},
		{"erin", "Erin Sample", "Sample-Erin-R5j7&e3k", []string{"erin@example.org"},
			447700900105, [][2]string{{"oidc", "erin-sub-5"}, {"cas", "erin"}}, false},
	}
}

// header returns the columns of the CSV and XLSX files, in order.
func header() []string {
	return []string{"user_id", "displayname", "password", "emails", "msisdns", "external_ids", "admin"}
}

func main() {
	dir := flag.String("dir", "samples", "directory to write users.csv, users.xlsx and users.jsonl into")
	flag.Parse()
	if err := run(*dir, users()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run writes the three sample files into dir.
func run(dir string, us []user) error {
	for name, write := range map[string]func([]user) ([]byte, error){
		"users.csv":   writeCSV,
		"users.xlsx":  writeXLSX,
		"users.jsonl": writeJSONL,
	} {
		b, err := write(us)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cells renders a user as CSV cells; lists are joined with ';'.
func (u user) cells() []string {
	msisdn := ""
	if u.msisdn != 0 {
		msisdn = strconv.FormatInt(u.msisdn, 10)
	}
	ids := make([]string, len(u.externalIDs))
	for i, id := range u.externalIDs {
		ids[i] = id[0] + ":" + id[1]
	}
	return []string{u.id, u.displayname, u.password, strings.Join(u.emails, ";"), msisdn, strings.Join(ids, ";"), strconv.FormatBool(u.admin)}
}

// writeCSV renders the table as comma-separated UTF-8 without a BOM.
func writeCSV(us []user) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header()); err != nil {
		return nil, err
	}
	for _, u := range us {
		if err := w.Write(u.cells()); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// writeXLSX renders the table as a workbook with one sheet. The msisdns
// are numeric cells, as they are when someone types or pastes phone numbers
// into Excel, so the sample exercises reading numbers back as digits.
func writeXLSX(us []user) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "users"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return nil, err
	}
	// Fixed dates keep the file identical from one run to the next.
	stamp := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if err := f.SetDocProps(&excelize.DocProperties{Creator: "synbatch samples", Created: stamp, Modified: stamp}); err != nil {
		return nil, err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	// Number format "0": General would show 4.477E+11 for a 12-digit number.
	digits, err := f.NewStyle(&excelize.Style{NumFmt: 1})
	if err != nil {
		return nil, err
	}
	columns := header()
	if err := f.SetSheetRow(sheet, "A1", &columns); err != nil {
		return nil, err
	}
	if err := f.SetCellStyle(sheet, "A1", "G1", bold); err != nil {
		return nil, err
	}
	for i, u := range us {
		row := i + 2
		cells := u.cells()
		for col, v := range cells {
			ref, err := excelize.CoordinatesToCellName(col+1, row)
			if err != nil {
				return nil, err
			}
			switch {
			case v == "":
				continue
			case columns[col] == "msisdns":
				err = f.SetCellValue(sheet, ref, u.msisdn)
				if err == nil {
					err = f.SetCellStyle(sheet, ref, ref, digits)
				}
			default:
				err = f.SetCellStr(sheet, ref, v)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	for col, width := range []float64{22, 16, 24, 40, 16, 34, 8} {
		name, err := excelize.ColumnNumberToName(col + 1)
		if err != nil {
			return nil, err
		}
		if err := f.SetColWidth(sheet, name, name, width); err != nil {
			return nil, err
		}
	}
	buf, err := f.WriteToBuffer()
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonUser is one JSONL line; field order is the order of the keys.
type jsonUser struct {
	UserID      string       `json:"user_id"`
	Displayname string       `json:"displayname"`
	Password    string       `json:"password"`
	Emails      []string     `json:"emails"`
	Msisdns     []string     `json:"msisdns,omitempty"`
	ExternalIDs []externalID `json:"external_ids"`
	Admin       bool         `json:"admin"`
}

// externalID is the Admin API's shape for an external id.
type externalID struct {
	AuthProvider string `json:"auth_provider"`
	ExternalID   string `json:"external_id"`
}

// writeJSONL renders the table as JSON Lines with lists as arrays.
func writeJSONL(us []user) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "&" in passwords readable
	for _, u := range us {
		j := jsonUser{UserID: u.id, Displayname: u.displayname, Password: u.password, Emails: u.emails, Admin: u.admin}
		if u.msisdn != 0 {
			j.Msisdns = []string{strconv.FormatInt(u.msisdn, 10)}
		}
		for _, id := range u.externalIDs {
			j.ExternalIDs = append(j.ExternalIDs, externalID{AuthProvider: id[0], ExternalID: id[1]})
		}
		if err := enc.Encode(j); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
