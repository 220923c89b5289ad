package main

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// measured is one run of the binary: exit, peak RSS and wall time.
type measured struct {
	maxRSS  int64 // KiB
	elapsed time.Duration
	stdout  []byte
}

// runBin runs synbatch with the no-op server (or none) in its environment.
func runBin(bin string, env []string, args ...string) (measured, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var m measured
	start := time.Now()
	out, err := cmd.Output()
	m.elapsed, m.stdout = time.Since(start), out
	if cmd.ProcessState != nil {
		if rss, ok := peakRSS(cmd.ProcessState); ok {
			m.maxRSS = rss >> 10
		}
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return m, fmt.Errorf("%v %v: %w: %s", bin, args, err, ee.Stderr)
		}
		return m, err
	}
	return m, nil
}

func noopEnv(dir, url string) ([]string, error) {
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("t"), 0o600); err != nil {
		return nil, err
	}
	return []string{"SYNBATCH_SERVER=" + url, "SYNBATCH_TOKEN_FILE=" + tok, "SYNBATCH_SERVER_NAME=bench.test", "HOME=" + dir}, nil
}

// benchMemory measures peak RSS of validate and apply on a large CSV and
// an Excel-style XLSX (shared strings), and on a tenth of each, to show the
// figure does not grow with the rows.
func benchMemory(out io.Writer, dir, bin string, csvRows, xlsxRows int) error {
	srv, err := startNoop()
	if err != nil {
		return err
	}
	defer srv.srv.Close()
	env, err := noopEnv(dir, srv.url)
	if err != nil {
		return err
	}
	type file struct {
		path string
		rows int
	}
	var files []file
	for _, n := range []int{csvRows / 10, csvRows} {
		p := filepath.Join(dir, fmt.Sprintf("mem-%d.csv", n))
		if err := writeCSV(p, n); err != nil {
			return err
		}
		files = append(files, file{p, n})
	}
	for _, n := range []int{xlsxRows / 10, xlsxRows} {
		p := filepath.Join(dir, fmt.Sprintf("mem-%d.xlsx", n))
		if err := writeSharedStringsXLSX(p, n); err != nil {
			return err
		}
		files = append(files, file{p, n})
	}
	fmt.Fprintf(out, "## 2. Memory\n\n`go run ./bench -only memory`: peak RSS (getrusage maxrss) of the `synbatch` binary; apply against the no-op server with `--concurrency 16 --rate 0`. XLSX files are written as Excel writes them, with a shared-strings table (every cell a distinct string).\n\n")
	fmt.Fprintf(out, "| manifest | rows | validate: peak RSS | apply: peak RSS | apply: time |\n| --- | --- | --- | --- | --- |\n")
	for _, f := range files {
		v, err := runBin(bin, env, "validate", f.path)
		if err != nil {
			return err
		}
		a, err := runBin(bin, env, "apply", f.path, "--concurrency", "16", "--rate", "0", "--journal", f.path+".journal")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "| %s | %d | %.0f MB | %.0f MB | %.1fs |\n", filepath.Ext(f.path), f.rows,
			float64(v.maxRSS)/1024, float64(a.maxRSS)/1024, a.elapsed.Seconds())
	}
	fmt.Fprintf(out, "\nGoal: under 100 MB, flat as rows grow.\n\n")
	return nil
}

// writeSharedStringsXLSX writes a minimal workbook whose cells are all
// shared strings, as Excel saves them (excelize's stream writer would
// write inline strings, which are cheaper to read and not what users have).
func writeSharedStringsXLSX(path string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	z := zip.NewWriter(f)
	put := func(name, body string) error {
		w, err := z.Create(name)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, body)
		return err
	}
	const cols = 3
	steps := []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`},
		{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`},
		{"xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`},
	}
	for _, s := range steps {
		if err := put(s.name, s.body); err != nil {
			return err
		}
	}
	// Shared strings: the header, then each row's three strings.
	w, err := z.Create("xl/sharedStrings.xml")
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n := cols * (rows + 1)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">`, n, n)
	fmt.Fprint(bw, `<si><t>user_id</t></si><si><t>displayname</t></si><si><t>emails</t></si>`)
	for i := range rows {
		fmt.Fprintf(bw, `<si><t>user%d</t></si><si><t>User %d</t></si><si><t>user%d@example.org</t></si>`, i, i, i)
	}
	fmt.Fprint(bw, `</sst>`)
	if err := bw.Flush(); err != nil {
		return err
	}
	w, err = z.Create("xl/worksheets/sheet1.xml")
	if err != nil {
		return err
	}
	bw = bufio.NewWriterSize(w, 1<<20)
	fmt.Fprint(bw, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	for r := 0; r <= rows; r++ {
		fmt.Fprintf(bw, `<row r="%d"><c r="A%d" t="s"><v>%d</v></c><c r="B%d" t="s"><v>%d</v></c><c r="C%d" t="s"><v>%d</v></c></row>`,
			r+1, r+1, r*cols, r+1, r*cols+1, r+1, r*cols+2)
	}
	fmt.Fprint(bw, `</sheetData></worksheet>`)
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	return f.Close()
}
