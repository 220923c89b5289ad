package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/internal/nofollow"
	"github.com/synbatch/synbatch/jobs"
)

// repeated collects a repeatable flag's values as written: a header may
// hold a comma, which a StringSliceFlag would split on.
type repeated []string

func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeated) String() string     { return strings.Join(*r, ", ") }

// stdinKey holds, in the app's Metadata, the temp directory where a
// manifest read from stdin was buffered; run removes it at the end.
const stdinKey = "stdin-buffer"

// bufferStdin copies the manifest on stdin to a temp file and returns its
// path. Validation reads the whole manifest before anything is sent, and
// apply reads it again: stdin can be read once, so it is kept in a file of
// its own (a 0700 directory, the file 0600: it may hold passwords), not in
// memory, which would cap a manifest's size. The directory is removed when
// the command ends (see removeStdinBuffer).
func bufferStdin(c *cli.Context) (string, error) {
	ext := map[string]string{"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}[c.String("format")]
	if ext == "" {
		return "", usageErr("the manifest from stdin (-) needs --format csv, tsv or jsonl")
	}
	if dir, ok := c.App.Metadata[stdinKey].(string); ok {
		return filepath.Join(dir, "stdin"+ext), nil // read already (apply --dry-run)
	}
	dir, err := os.MkdirTemp("", "synbatch-stdin-")
	if err != nil {
		return "", fmt.Errorf("buffer stdin: %w", err)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[stdinKey] = dir
	path := filepath.Join(dir, "stdin"+ext)
	f, err := nofollow.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("buffer stdin: %w", err)
	}
	_, err = io.Copy(f, c.App.Reader)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("buffer stdin in %s: %w", path, err)
	}
	return path, nil
}

// removeStdinBuffer removes what bufferStdin wrote, if anything.
func removeStdinBuffer(app *cli.App) {
	if dir, ok := app.Metadata[stdinKey].(string); ok {
		_ = nofollow.RemoveAll(dir)
	}
}

// rowsOf reads --rows FIRST-LAST (or a single row N).
func rowsOf(c *cli.Context) (first, last int, err error) {
	v := c.String("rows")
	if v == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		b = a
	}
	first, errA := strconv.Atoi(strings.TrimSpace(a))
	last, errB := strconv.Atoi(strings.TrimSpace(b))
	if errA != nil || errB != nil || first < 1 || last < first {
		return 0, 0, usageErr("--rows %q: want FIRST-LAST, row numbers as the spreadsheet shows them (2-101: the first hundred rows under the header)", v)
	}
	return first, last, nil
}

// manifestConfig is what the config file says about manifests' headers.
type manifestConfig struct {
	source string            // the config file, for messages
	Map    map[string]string // map: HEADER: column
	Ignore []string          // ignore: [HEADER, …]
	// ActionValues is action_values: VALUE: action.
	ActionValues map[string]string
}

// actionValues reads --action-value over the config's action_values: a
// value given by both takes the flag's action.
func actionValues(c *cli.Context, cfg manifestConfig) (map[string]jobs.Action, error) {
	m := map[string]jobs.Action{}
	set := func(v string, a jobs.Action) {
		for old := range m {
			if formats.Key(old) == formats.Key(v) {
				delete(m, old)
			}
		}
		m[v] = a
	}
	for _, v := range slices.Sorted(maps.Keys(cfg.ActionValues)) {
		a := jobs.Action(strings.ToLower(strings.TrimSpace(cfg.ActionValues[v])))
		if err := jobs.CheckActionValue(v, a); err != nil {
			return nil, usageErr("action_values: in %s: %s=%s: %v", cfg.source, v, cfg.ActionValues[v], err)
		}
		set(v, a)
	}
	if r, ok := c.Generic("action-value").(*repeated); ok {
		for _, kv := range *r {
			v, act, ok := strings.Cut(kv, "=")
			a := jobs.Action(strings.ToLower(strings.TrimSpace(act)))
			if !ok || a == "" {
				return nil, usageErr("--action-value %q: want VALUE=ACTION, e.g. Left=deactivate", kv)
			}
			if err := jobs.CheckActionValue(v, a); err != nil {
				return nil, usageErr("--action-value %s: %v", kv, err)
			}
			set(strings.TrimSpace(v), a)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// headerFlags reads --map and --ignore over the config's map: and ignore:.
// A flag beats the config header by header, whichever way: --ignore of a
// header the config maps skips it, --map of a header the config ignores
// maps it. (Before, the config's map beat --ignore, and every row then
// failed on a column the admin had asked to skip.) A header both mapped
// and ignored in the same place is a usage error, as is a column that does
// not exist; both are found before the manifest is read.
func headerFlags(c *cli.Context, cfg manifestConfig) (map[string]string, []string, error) {
	var flagMap [][2]string
	if r, ok := c.Generic("map").(*repeated); ok {
		for _, kv := range *r {
			// The last = splits: a header may hold one (validate suggests
			// --map 'a=b=COLUMN' for the header a=b), a column never does.
			i := strings.LastIndex(kv, "=")
			h, col, ok := kv[:max(i, 0)], kv[i+1:], i >= 0
			if !ok || strings.TrimSpace(col) == "" {
				return nil, nil, usageErr("--map %q: want HEADER=COLUMN", kv)
			}
			if err := jobs.CheckMap(h, col); err != nil {
				return nil, nil, usageErr("--map %s: %v", kv, err)
			}
			flagMap = append(flagMap, [2]string{h, col})
		}
	}
	var flagIgnore []string
	if r, ok := c.Generic("ignore").(*repeated); ok {
		flagIgnore = *r
	}
	flagMapped, flagIgnored := map[string]bool{}, map[string]bool{}
	for _, hc := range flagMap {
		flagMapped[formats.Key(hc[0])] = true
	}
	for _, h := range flagIgnore {
		if formats.Key(h) == "" {
			return nil, nil, usageErr("--ignore %q: the header has no letters or digits", h)
		}
		if flagMapped[formats.Key(h)] {
			return nil, nil, usageErr("--ignore %q: --map names a column for the same header; give one of them", h)
		}
		flagIgnored[formats.Key(h)] = true
	}
	cfgIgnored := map[string]bool{}
	for _, h := range cfg.Ignore {
		if formats.Key(h) == "" {
			return nil, nil, usageErr("ignore: in %s: %q: the header has no letters or digits", cfg.source, h)
		}
		cfgIgnored[formats.Key(h)] = true
	}

	m := map[string]string{}
	for _, h := range slices.Sorted(maps.Keys(cfg.Map)) {
		if err := jobs.CheckMap(h, cfg.Map[h]); err != nil {
			return nil, nil, usageErr("map: in %s: %s=%s: %v", cfg.source, h, cfg.Map[h], err)
		}
		k := formats.Key(h)
		if cfgIgnored[k] {
			return nil, nil, usageErr("%s maps %s in map: and skips it in ignore:; keep one of them", cfg.source, formats.Quote(h))
		}
		if !flagIgnored[k] && !flagMapped[k] {
			m[h] = cfg.Map[h]
		}
	}
	for _, hc := range flagMap {
		for old := range m {
			if formats.Key(old) == formats.Key(hc[0]) {
				delete(m, old)
			}
		}
		m[hc[0]] = hc[1]
	}
	var ignore []string
	for _, h := range cfg.Ignore {
		if !flagMapped[formats.Key(h)] {
			ignore = append(ignore, h)
		}
	}
	ignore = append(ignore, flagIgnore...)
	return m, ignore, nil
}
