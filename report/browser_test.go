package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportInBrowser loads a report in a real headless browser (Debian's
// chromium): the page's text is there as a reader sees it, and both charts
// are drawn (their colours are on the screenshot, which is kept). CI
// installs chromium and sets SYNBATCH_REQUIRE_BROWSER=1, so that there a
// missing browser fails the test instead of skipping it.
func TestReportInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		if os.Getenv("SYNBATCH_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium on PATH and SYNBATCH_REQUIRE_BROWSER is set (apt-get install chromium)")
		}
		t.Skip("no chromium on PATH (set SYNBATCH_REQUIRE_BROWSER=1 to make this a failure)")
	}
	dir := t.TempDir()
	path := writeSampleJournal(t, dir)
	r, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := r.WriteHTML(&b, "v1.2.3-test"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page

	dom := runBrowser(t, browser, "--dump-dom", url)
	for _, want := range []string{
		"synbatch run report", "Written by synbatch v1.2.3-test", "https://matrix.example.org",
		"leavers.csv", "Rows finished per second", "Rows in flight",
		"Failed and uncertain rows", "@user07:example.org", "HTTP 403", "M_FORBIDDEN",
		"You are not a server admin", "@user13:example.org", "uncertain",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page as loaded has no %q", want)
		}
	}

	shot := filepath.Join(artefactDir(t), "report-screenshot.png")
	runBrowser(t, browser, "--screenshot="+shot, "--window-size=1000,2600", "--hide-scrollbars", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The charts' line colours (#1f5fbf and #c2410c) appear nowhere else on
	// the page: pixels of them mean the SVG was drawn.
	rate, inFlight := 0, 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
			if near(c, [3]int{0x1f, 0x5f, 0xbf}) {
				rate++
			}
			if near(c, [3]int{0xc2, 0x41, 0x0c}) {
				inFlight++
			}
		}
	}
	t.Logf("screenshot %s: %d pixels of the rate line, %d of the in-flight line", shot, rate, inFlight)
	if rate < 300 || inFlight < 300 {
		t.Errorf("the charts were not drawn: %d pixels of the rate line, %d of the in-flight line (want 300 or more each)", rate, inFlight)
	}
}

func near(a, b [3]int) bool {
	d := 0
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
	}
	return d < 24*24
}

func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artefactDir is where the screenshot is kept: $SYNBATCH_ARTIFACTS (CI
// sets it), else a directory of the test's own.
func artefactDir(t *testing.T) string {
	dir := os.Getenv("SYNBATCH_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runBrowser(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// As root (CI) chromium runs only without its sandbox; the page is ours.
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
