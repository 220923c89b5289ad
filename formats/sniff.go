package formats

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// kind is what a file's first bytes say it is, whatever its name.
type kind int

const (
	kindText kind = iota // CSV, TSV or JSONL: judged by their own readers
	kindXLSX
	kindODS
	kindZip // a zip that is neither workbook
	kindXLS // the old binary Excel format (OLE2)
	kindPDF
)

func (k kind) String() string {
	switch k {
	case kindXLSX:
		return "an Excel workbook (.xlsx)"
	case kindODS:
		return "an OpenDocument spreadsheet (.ods)"
	case kindZip:
		return "a zip archive"
	case kindXLS:
		return "an old Excel workbook (.xls)"
	case kindPDF:
		return "a PDF document"
	}
	return "a text file"
}

// ext is the extension a file of kind k should carry.
func (k kind) ext() string {
	switch k {
	case kindXLSX:
		return ".xlsx"
	case kindODS:
		return ".ods"
	}
	return ""
}

// sniff reads what the file at path is from its content: the magic numbers
// of a zip, an OLE2 compound file and a PDF, and for a zip the part that
// makes it a workbook (ODF's mimetype, OOXML's workbook part). Anything
// else is text.
func sniff(path string) (kind, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return kindText, nil // a pipe cannot be read twice; its reader judges it
	}
	f, err := os.Open(path)
	if err != nil {
		return kindText, fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return kindText, fmt.Errorf("read manifest %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
	case bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")):
		return kindXLS, nil
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return kindPDF, nil
	default:
		return kindText, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return kindText, fmt.Errorf("read manifest %s: %w", path, err)
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return kindZip, nil // a damaged zip is still not text
	}
	for _, zf := range zr.File {
		switch strings.ToLower(zf.Name) {
		case "mimetype":
			// ODF stores its type first and uncompressed; a small
			// read of a small part.
			if zf.UncompressedSize64 > 256 {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 256))
			rc.Close()
			if strings.TrimSpace(string(b)) == odsMimeType {
				return kindODS, nil
			}
		case "xl/workbook.xml", "[content_types].xml":
			return kindXLSX, nil
		}
	}
	return kindZip, nil
}

// odsMimeType is what an OpenDocument spreadsheet's mimetype part holds.
const odsMimeType = "application/vnd.oasis.opendocument.spreadsheet"

// checkContent refuses a file whose content is not what its extension
// says, in one line that says what it is and what to do, rather than a
// screen of UTF-8 errors from a workbook read as CSV.
func checkContent(path, ext string) error {
	k, err := sniff(path)
	if err != nil {
		return err
	}
	want := kindText
	switch ext {
	case ".xlsx":
		want = kindXLSX
	case ".ods":
		want = kindODS
	}
	if k == want {
		return nil
	}
	switch {
	case k.ext() != "":
		return fmt.Errorf("open manifest %s: the file is %s, not %s: rename it to %s", path, k, strings.TrimPrefix(ext, "."), strings.TrimSuffix(path, ext)+k.ext())
	case k == kindXLS:
		return fmt.Errorf("open manifest %s: the file is %s, which synbatch does not read: save it as .xlsx, .ods or CSV UTF-8", path, k)
	case k == kindText:
		return fmt.Errorf("open manifest %s: the file is named %s but holds text, not a workbook: if it is CSV, rename it to %s", path, ext, strings.TrimSuffix(path, ext)+".csv")
	}
	return fmt.Errorf("open manifest %s: the file is %s, not a manifest", path, k)
}
