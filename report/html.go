package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// Page rules: one file, its style inline, its charts inline SVG, no
// script and no URL it loads; every value from a journal goes through
// html/template's escaping (an error message is the server's text).

// WriteHTML writes the report as one self-contained HTML page, saying
// which synbatch (version) wrote it.
func (r *Report) WriteHTML(w io.Writer, version string) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
		"short":   func(s string) string { return s[:min(len(s), 12)] },
		"join":    strings.Join,
		"chart":   chart,
		"percent": func(n, of int) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(max(of, 1))) },
		"ms":      func(ms int64) string { return time.Duration(ms * int64(time.Millisecond)).String() },
		"seconds": func(s float64) string { return time.Duration(s * float64(time.Second)).Round(time.Second).String() },
		"at":      func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05") },
		"flag":    flagText,
	}).Parse(page)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	return t.Execute(w, struct {
		*Report
		Version string
	}{r, version})
}

// flagText shows a header option; action= is only the action of rows
// without an action column, never what the rows did (the Actions column).
func flagText(arg string) string {
	if a, ok := strings.CutPrefix(arg, "action="); ok {
		return "action of rows without one=" + a
	}
	return arg
}

// chart draws s as an SVG line over a light area, with its largest value
// and the time axis labelled; id names it for a test or a stylesheet.
func chart(id, unit, color string, s Series, from time.Time) template.HTML {
	const w, h, left, bottom, top = 720.0, 200.0, 56.0, 28.0, 12.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" role="img" aria-label="%s over time" width="%g" height="%g" viewBox="0 0 %g %g" xmlns="http://www.w3.org/2000/svg">`,
		id, unit, w, h, w, h)
	if len(s.Values) == 0 {
		b.WriteString(`<text x="20" y="100">no timed rows</text></svg>`)
		return template.HTML(b.String())
	}
	peak := s.Max()
	if peak == 0 {
		peak = 1
	}
	plotW, plotH := w-left-8, h-bottom-top
	x := func(i int) float64 { return left + plotW*float64(i)/float64(max(len(s.Values)-1, 1)) }
	y := func(v float64) float64 { return top + plotH*(1-v/peak) }
	var pts strings.Builder
	for i, v := range s.Values {
		fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(v))
	}
	line := strings.TrimSpace(pts.String())
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#fafafa" stroke="#ccc"/>`, left, top, plotW, plotH)
	fmt.Fprintf(&b, `<polygon points="%.1f,%.1f %s %.1f,%.1f" fill="%s" fill-opacity="0.25" stroke="none"/>`,
		x(0), y(0), line, x(len(s.Values)-1), y(0), color)
	fmt.Fprintf(&b, `<polyline class="series" points="%s" fill="none" stroke="%s" stroke-width="2.5"/>`, line, color)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end" font-size="12">%.1f</text>`, left-6, top+10, s.Max())
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end" font-size="12">0</text>`, left-6, top+plotH)
	end := from.Add(s.Step * time.Duration(len(s.Values)))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="12">%s</text>`, left, h-8, from.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end" font-size="12">%s UTC (a point every %s)</text>`,
		w-8, h-8, end.UTC().Format("15:04:05"), s.Step.Round(time.Millisecond))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>synbatch run report: {{range $i, $r := .Runs}}{{if $i}}, {{end}}{{$r.Manifest}}{{end}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.2em 0.8em 0.2em 0; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { border-bottom: 1px solid #aaa; }
.failed, .uncertain { color: #b00020; font-weight: bold; }
.ok { color: #1b6e20; }
code { font-size: 0.92em; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>synbatch run report</h1>
<p class="muted">Written by synbatch {{.Version}} from {{join .Journals ", "}}.</p>

<h2 id="summary">Summary</h2>
<p>{{.Rows}} rows have a result{{if .Problems}}; <span class="failed">{{len .Problems}} need attention</span> (failed or uncertain, listed below){{else}}; <span class="ok">none failed</span>{{end}}{{if .Pending}}; {{.Pending}} rows had a write sent and no result (run the same command again to settle them){{end}}.</p>
<table id="outcomes">
<tr><th>Outcome</th><th>Rows</th><th>Share</th></tr>
{{range .Outcomes}}<tr><td class="{{.Outcome}}">{{.Outcome}}</td><td class="n">{{.N}}</td><td class="n">{{percent .N $.Rows}}</td></tr>
{{end}}</table>

<h2 id="runs">What ran</h2>
<table>
<tr><th>Started</th><th>Run by</th><th>Manifest</th><th>Server</th><th>Rows ran</th><th>synbatch</th><th>Took</th><th>Ended</th></tr>
{{range .Runs}}<tr class="run"><td>{{when .Started}}</td><td class="actor">{{if .Actor}}{{.Actor}}{{else}}<span class="muted">not recorded</span>{{end}}</td><td><code>{{.Manifest}}</code><br><span class="muted">sha256 {{short .ManifestSHA256}}</span></td><td>{{.Server}}{{if .Insecure}} <span class="failed">(TLS not verified)</span>{{end}}</td><td class="ran">{{range $i, $a := .Actions}}{{if $i}}, {{end}}{{$a.Action}} {{$a.N}}{{end}}</td><td>{{.Version}}</td><td>{{if .End}}{{seconds .End.ElapsedS}}{{end}}</td><td>{{if .End}}{{if .End.StoppedBy}}stopped: {{.End.StoppedBy}}{{else}}finished{{end}}{{else}}<span class="muted">no closing record (killed)</span>{{end}}</td></tr>
{{if .Args}}<tr><td></td><td colspan="7" class="muted">flags: <code>{{range $i, $a := .Args}}{{if $i}} {{end}}{{flag $a}}{{end}}</code></td></tr>{{end}}
{{end}}</table>

<h2 id="affected">Users affected by destructive actions</h2>
{{$any := false}}{{range .Runs}}{{if .Affected}}{{$any = true}}{{end}}{{end}}
{{if $any}}<table>
<tr><th>Run started</th><th>Run by</th><th>Action</th><th>User</th><th>Row</th></tr>
{{range $r := .Runs}}{{range .Affected}}<tr class="affected"><td>{{when $r.Started}}</td><td>{{$r.Actor}}</td><td>{{.Action}}</td><td>{{.UserID}}</td><td class="n">{{.Row}}</td></tr>
{{end}}{{end}}</table>
{{else}}<p>None: no destructive row changed a user.</p>{{end}}

<h2 id="actions">Per action</h2>
<table>
<tr><th>Action</th><th>Rows</th><th>done</th><th>of them created</th><th>unchanged</th><th>skipped</th><th>failed</th><th>uncertain</th></tr>
{{range .Actions}}<tr><td>{{.Action}}</td><td class="n">{{.Total}}</td><td class="n">{{index .By "done"}}</td><td class="n">{{.Created}}</td><td class="n">{{index .By "unchanged"}}</td><td class="n">{{index .By "skipped"}}</td><td class="n">{{index .By "failed"}}</td><td class="n">{{index .By "uncertain"}}</td></tr>
{{end}}</table>

<h2 id="throughput">Over time</h2>
{{if .Rate.Values}}<p>From {{when .First}} to {{when .Last}}.</p>{{end}}
<h3>Rows finished per second</h3>
{{chart "rate-chart" "rows per second" "#1f5fbf" .Rate .First}}
<h3>Rows in flight</h3>
{{chart "inflight-chart" "rows in flight" "#c2410c" .InFlight .First}}

<h2 id="problems">Failed and uncertain rows</h2>
{{if .Problems}}<table>
<tr><th>Manifest</th><th>Row</th><th>User</th><th>Action</th><th>Outcome</th><th>Error</th><th>Tries</th><th>At</th></tr>
{{range .Problems}}<tr><td><code>{{.Manifest}}</code></td><td class="n">{{.Row}}</td><td>{{.UserID}}</td><td>{{.Action}}</td><td class="{{.Outcome}}">{{.Outcome}}</td><td>{{if .Status}}HTTP {{.Status}} {{end}}{{if .Errcode}}<code>{{.Errcode}}</code> {{end}}{{.Error}}</td><td class="n">{{.Attempts}}</td><td>{{if .Time}}{{at .Time}}{{end}}</td></tr>
{{end}}</table>
{{else}}<p class="ok">None.</p>{{end}}
</body>
</html>
`
