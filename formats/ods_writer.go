package formats

import (
	"archive/zip"
	"bufio"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// odsWriter streams rows into the content.xml of an OpenDocument
// spreadsheet: the zip takes one part at a time, so memory stays flat
// however many rows are written. It writes through the same atomic
// temporary file as the other writers.
type odsWriter struct {
	out *atomicFile
	zw  *zip.Writer
	w   *bufio.Writer // content.xml
	b   strings.Builder
}

// The parts around the rows. The date style shows a time as ISO 8601, as
// the XLSX writer's does.
const (
	odsManifest = `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.3" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
`
	odsContentHead = `<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" office:version="1.3">` +
		`<office:automatic-styles><number:date-style style:name="N1"><number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/>` +
		`<number:text> </number:text><number:hours number:style="long"/><number:text>:</number:text><number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/></number:date-style>` +
		`<style:style style:name="ce1" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N1"/></office:automatic-styles>` +
		`<office:body><office:spreadsheet><table:table table:name="Sheet1">`
	odsContentTail = `</table:table></office:spreadsheet></office:body></office:document-content>`
)

func newODSWriter(out *atomicFile, columns []string) (*odsWriter, error) {
	o := &odsWriter{out: out, zw: zip.NewWriter(out.f)}
	fail := func(err error) (*odsWriter, error) {
		out.abort()
		return nil, fmt.Errorf("ods: %w", err)
	}
	// The mimetype comes first and uncompressed, so that a program can
	// tell the format from the file's first bytes.
	w, err := o.zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	if err == nil {
		_, err = w.Write([]byte(odsMimeType))
	}
	if err == nil {
		w, err = o.zw.Create("META-INF/manifest.xml")
	}
	if err == nil {
		_, err = w.Write([]byte(odsManifest))
	}
	if err == nil {
		w, err = o.zw.Create("content.xml")
	}
	if err != nil {
		return fail(err)
	}
	o.w = bufio.NewWriterSize(w, 64<<10)
	o.w.WriteString(odsContentHead)
	head := make([]any, len(columns))
	for i, c := range columns {
		head[i] = c
	}
	if err := o.Write(head); err != nil {
		return fail(err)
	}
	return o, nil
}

// Write stores every value as a text cell (numbers too, so phone numbers
// keep their digits), which is never a formula: see escapeText. Integers
// are numbers and times dates, as in the XLSX writer.
func (o *odsWriter) Write(values []any) error {
	b := &o.b
	b.Reset()
	b.WriteString(`<table:table-row>`)
	for _, v := range values {
		switch x := v.(type) {
		case nil:
			b.WriteString(`<table:table-cell/>`)
		case int, int64:
			n := fmt.Sprint(x)
			fmt.Fprintf(b, `<table:table-cell office:value-type="float" office:value="%s"><text:p>%s</text:p></table:table-cell>`, n, n)
		case time.Time:
			t := x.UTC().Format("2006-01-02T15:04:05")
			fmt.Fprintf(b, `<table:table-cell table:style-name="ce1" office:value-type="date" office:date-value="%s"><text:p>%s</text:p></table:table-cell>`, t, strings.Replace(t, "T", " ", 1))
		default:
			s := cellTextWith(v, escapeText)
			if s == "" {
				b.WriteString(`<table:table-cell/>`)
				continue
			}
			b.WriteString(`<table:table-cell office:value-type="string">`)
			odsParagraphs(b, s)
			b.WriteString(`</table:table-cell>`)
		}
	}
	b.WriteString(`</table:table-row>`)
	_, err := o.w.WriteString(b.String())
	return err
}

// odsParagraphs writes s as text:p elements, one per line. ODF collapses
// runs of spaces and drops them at the ends of a paragraph, so any space
// but a single one between words is a text:s, and a tab a text:tab: the
// reader gives back the value exactly.
func odsParagraphs(b *strings.Builder, s string) {
	for _, line := range strings.Split(s, "\n") {
		b.WriteString(`<text:p>`)
		for i := 0; i < len(line); {
			j := i + 1
			switch line[i] {
			case ' ':
				for j < len(line) && line[j] == ' ' {
					j++
				}
				if j-i == 1 && i > 0 && j < len(line) {
					b.WriteByte(' ')
				} else {
					b.WriteString(`<text:s text:c="` + strconv.Itoa(j-i) + `"/>`)
				}
			case '\t':
				b.WriteString(`<text:tab/>`)
			default:
				for j < len(line) && line[j] != ' ' && line[j] != '\t' {
					j++
				}
				_ = xml.EscapeText(b, []byte(line[i:j]))
			}
			i = j
		}
		b.WriteString(`</text:p>`)
	}
}

// Close finishes content.xml and the zip, and renames the file into place.
func (o *odsWriter) Close() error {
	o.w.WriteString(odsContentTail)
	if err := o.w.Flush(); err != nil {
		o.out.abort()
		return fmt.Errorf("ods: %w", err)
	}
	if err := o.zw.Close(); err != nil {
		o.out.abort()
		return fmt.Errorf("ods: %w", err)
	}
	return o.out.commit()
}
