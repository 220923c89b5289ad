package formats

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A spreadsheet stores a date as a number, the days since its epoch; only
// the cell's number format says it is a date. The reader gives such a cell
// as an ISO 8601 date (2026-01-31), or date and time, the way the sheet
// shows it, in the workbook's own date system: a Mac workbook counts from
// 1904, and its serial numbers read raw would be four years off.

// styles is what the reader needs of the workbook's styles part: which
// cell formats (the s attribute of a cell) show a number as a date, and
// which mark text as typed after a ' (quotePrefix: Excel's ”=x is the text
// '=x, its leading ' part of the value).
type styles struct {
	date   []bool // by cell format index
	quoted []bool
}

func (s *styles) isDate(i int) bool   { return i >= 0 && i < len(s.date) && s.date[i] }
func (s *styles) isQuoted(i int) bool { return i >= 0 && i < len(s.quoted) && s.quoted[i] }

// readStyles reads the cell formats of the styles part, if there is one.
func (wb *workbook) readStyles() (*styles, error) {
	s := &styles{}
	if wb.styles == "" {
		return s, nil
	}
	if f := wb.parts[wb.styles]; f != nil && f.UncompressedSize64 > maxHeldPart {
		return nil, fmt.Errorf("the styles part inflates to %d bytes, more than the %s the reader holds in memory: save the workbook again, or as CSV", f.UncompressedSize64, byteSize(maxHeldPart))
	}
	custom := map[int]bool{} // numFmtId → shows a date
	err := wb.decode(wb.styles, false, func(d *xml.Decoder, se xml.StartElement) error {
		switch se.Name.Local {
		case "numFmt":
			id, _ := attr(se, "numFmtId")
			code, _ := attr(se, "formatCode")
			if n, err := strconv.Atoi(id); err == nil {
				custom[n] = dateFormat(code)
			}
		case "cellXfs":
			return cellFormats(d, custom, s)
		}
		return nil
	})
	return s, err
}

// cellFormats reads the <xf> entries of <cellXfs> and consumes its end.
func cellFormats(d *xml.Decoder, custom map[int]bool, s *styles) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "xf" {
				if len(s.date) == 1<<16 {
					return fmt.Errorf("more than %d cell formats", 1<<16)
				}
				v, _ := attr(t, "numFmtId")
				id, _ := strconv.Atoi(v)
				isDate, ok := custom[id]
				if !ok {
					isDate = builtinDate(id)
				}
				s.date = append(s.date, isDate)
				q, _ := attr(t, "quotePrefix")
				s.quoted = append(s.quoted, q == "1" || q == "true")
			}
			if err := d.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// builtinDate reports whether a built-in number format (ECMA-376 part 1,
// 18.8.30, with the East Asian ones) shows a date or time.
func builtinDate(id int) bool {
	return id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 || id >= 50 && id <= 58
}

// dateFormat reports whether a custom number format code shows a date or
// time: a y, m, d, h or s outside quoted text, escapes and [colour] or
// [$-locale] brackets. Elapsed time ([h]:mm) is a duration, not a date.
func dateFormat(code string) bool {
	if strings.Contains(code, "[h]") || strings.Contains(code, "[m]") || strings.Contains(code, "[s]") {
		return false
	}
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '"':
			if j := strings.IndexByte(code[i+1:], '"'); j >= 0 {
				i += j + 1
			} else {
				return false
			}
		case '\\', '_', '*':
			i++
		case '[':
			if j := strings.IndexByte(code[i:], ']'); j >= 0 {
				i += j
			}
		case 'y', 'Y', 'm', 'M', 'd', 'D', 'h', 'H', 's', 'S':
			return true
		case 'G', 'g': // General
			if strings.HasPrefix(strings.ToLower(code[i:]), "general") {
				i += len("general") - 1
			}
		}
	}
	return false
}

// excelDate reads a date serial number as ISO 8601: a date, or a date and
// time to the second when it has a time of day. False when the number is
// no date a spreadsheet shows (negative, past 9999-12-31, or the
// 1900-02-29 that Excel counts but never was).
func excelDate(v string, date1904 bool) (string, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", false
	}
	var epoch time.Time
	switch {
	case date1904:
		epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	case f >= 61:
		epoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	case f >= 60:
		return "", false
	default: // before Excel's phantom 1900-02-29
		epoch = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	days := math.Floor(f)
	secs := math.Round((f - days) * 86400)
	t := epoch.AddDate(0, 0, int(days)).Add(time.Duration(secs) * time.Second)
	if t.Year() > 9999 {
		return "", false
	}
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
		return t.Format("2006-01-02"), true
	}
	return t.Format("2006-01-02T15:04:05"), true
}
