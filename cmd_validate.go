package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/formats"
	"github.com/synbatch/synbatch/jobs"
	"github.com/synbatch/synbatch/pipeline"
)

func manifestFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sheet", Usage: "XLSX or ODS `SHEET` to read (default: the first visible one)"},
		&cli.StringFlag{Name: "action", Value: "upsert", Usage: "`ACTION` of rows without an action column (see the README for all)"},
		&cli.BoolFlag{Name: "replace-lists", Usage: "emails, msisdns and external_ids in a row replace the user's lists instead of being added"},
		&cli.StringFlag{Name: "match-by", Value: "user_id", Usage: "how rows name their user: `user_id|email|external_id:PROVIDER` (the user_id, email or external_id column)"},
		&cli.StringFlag{Name: "auth-provider", Usage: "external_ids cells are bare ids of the identity provider `IDP` (for an IdP's export)"},
		&cli.BoolFlag{Name: "generate-passwords", Usage: "generate a password for rows that need one and have none (new users, reset-password, reactivate)"},
		&cli.StringFlag{Name: "phone-region", Usage: "read phone numbers written without a country code (07700 900123) as numbers of `REGION` (GB, DE, …; default: refuse them; or phone_region: in the config)", EnvVars: []string{"SYNBATCH_PHONE_REGION"}},
		&cli.GenericFlag{Name: "map", Value: &repeated{}, Usage: "read the column headed `HEADER=COLUMN` as COLUMN (repeatable; or map: in the config)"},
		&cli.StringFlag{Name: "format", Usage: "with MANIFEST -, read stdin as `csv|tsv|jsonl`"},
		&cli.GenericFlag{Name: "ignore", Value: &repeated{}, Usage: "skip the column headed `HEADER` (repeatable; or ignore: in the config)"},
		&cli.GenericFlag{Name: "action-value", Value: &repeated{}, Usage: "what a cell of the action column stands for (a Status column read with --map 'Status=action'): `VALUE=ACTION`, e.g. Left=deactivate (repeatable; or action_values: in the config)"},
	}
}

func validateCommand(ctx context.Context, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a manifest offline; exit 2 listing every problem as FILE:ROW:COLUMN: what is wrong",
		ArgsUsage: "MANIFEST",
		Flags: append(manifestFlags(), outputFlag(), configFlag(),
			&cli.StringFlag{Name: "server-name", Usage: "server `NAME` for bare localparts and to check full ids against", EnvVars: []string{"SYNBATCH_SERVER_NAME"}}),
		Action: func(c *cli.Context) error {
			asJSON, err := outputMode(c)
			if err != nil {
				return err
			}
			// Read as apply will read it: the config's phone_region and
			// map too.
			fc, source, err := loadConfig(c)
			if err != nil {
				return err
			}
			// Validation sends nothing, so the server name is the one
			// the admin gave or configured (synbatch's server_name, or
			// synadm's homeserver); without one, full user ids cannot be
			// checked against it, and the report says so.
			serverName := first(c.String("server-name"), fc.ServerName, fc.synadmServerName())
			src, err := sourceFrom(c, serverName, fc.PhoneRegion, manifestConfig{source: source, Map: fc.Map, Ignore: fc.Ignore, ActionValues: fc.ActionValues})
			if err != nil {
				return err
			}
			checked, err := validateUntil(ctx, src, stderr)
			if err != nil {
				return err
			}
			var unchecked []string
			if serverName == "" {
				unchecked = append(unchecked, "no server name (--server-name, SYNBATCH_SERVER_NAME or server_name: in the config): "+
					"user ids were not checked to belong to the server; plan and apply check them")
			}
			if src.UsesProviders(checked) {
				// Offline there is no server to ask; plan and apply do.
				unchecked = append(unchecked, fmt.Sprintf("identity providers (%s): validate has no server to ask; plan and apply check them against the server's login flows",
					strings.Join(src.Providers(checked), ", ")))
			}
			return reportValidation(stdout, stderr, asJSON, src, checked, unchecked)
		},
	}
}

// validateUntil validates src until ctx is cancelled (the first Ctrl-C or
// SIGTERM): the reading looks at ctx every few thousand rows. Validation
// sends nothing, so a stop loses nothing.
//
// It first says which sheet of a workbook it reads (a hidden one is never
// read unless --sheet names it), so an admin sees what was taken.
func validateUntil(ctx context.Context, src pipeline.Source, stderr io.Writer) (*pipeline.Checked, error) {
	if note, err := formats.SheetNote(src.Path, src.Sheet); err == nil && note != "" {
		fmt.Fprintf(stderr, "%s: %s\n", src.Label(), note)
	}
	ch, err := pipeline.ValidateContext(ctx, src)
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: validation of %s interrupted; nothing was sent", pipeline.ErrStopped, src.Label())
	case err != nil:
		return nil, usageErr("%v", err)
	}
	return ch, nil
}

// sourceFrom reads the manifest argument and the flags that shape its rows;
// phoneRegion is the config's phone_region, which --phone-region overrides,
// and cfg its map: and ignore:, which --map and --ignore override header
// by header.
func sourceFrom(c *cli.Context, serverName, phoneRegion string, cfg manifestConfig) (pipeline.Source, error) {
	if c.NArg() != 1 {
		return pipeline.Source{}, usageErr("%s: want one MANIFEST argument (got %d)", c.Command.Name, c.NArg())
	}
	act := jobs.Action(c.String("action"))
	if !slices.Contains(jobs.Actions(), act) {
		return pipeline.Source{}, usageErr("--action %q: want one of %v", act, jobs.Actions())
	}
	if err := jobs.CheckMatchBy(c.String("match-by")); err != nil {
		return pipeline.Source{}, usageErr("%v", err)
	}
	region := first(c.String("phone-region"), phoneRegion)
	if region != "" {
		if err := jobs.CheckPhoneRegion(region); err != nil {
			return pipeline.Source{}, usageErr("%v", err)
		}
		region = strings.ToUpper(region)
	}
	headers, ignore, err := headerFlags(c, cfg)
	if err != nil {
		return pipeline.Source{}, err
	}
	values, err := actionValues(c, cfg)
	if err != nil {
		return pipeline.Source{}, err
	}
	path, name := c.Args().First(), ""
	if path == "-" {
		name = "-"
		if path, err = bufferStdin(c); err != nil {
			return pipeline.Source{}, err
		}
	}
	return pipeline.Source{Path: path, Name: name, Sheet: c.String("sheet"), Parse: jobs.ParseOptions{
		Map: headers, Ignore: ignore,
		File: cmp.Or(name, path), ServerName: serverName, DefaultAction: act, ReplaceLists: c.Bool("replace-lists"),
		MatchBy: c.String("match-by"), AuthProvider: c.String("auth-provider"), GeneratePasswords: c.Bool("generate-passwords"),
		PhoneRegion: region, ActionValues: values,
	}}, nil
}

type validation struct {
	Valid    bool      `json:"valid"`
	Rows     int       `json:"rows"`
	Total    int       `json:"problem_count"`
	Problems []problem `json:"problems"`
	// Unchecked says what validation could not check offline.
	Unchecked []string `json:"unchecked,omitempty"`
}

type problem struct {
	File    string `json:"file"`
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

// reportValidation prints the result and returns an exit-2 error when the
// manifest is not valid.
//
// unchecked lists what could not be checked offline: each goes to stderr
// as a note (and into the JSON), so "valid" is never read as more than it is.
func reportValidation(stdout, stderr io.Writer, asJSON bool, src pipeline.Source, ch *pipeline.Checked, unchecked []string) error {
	v := validation{Valid: ch.Total == 0, Rows: ch.Rows, Total: ch.Total, Problems: []problem{}, Unchecked: unchecked}
	for _, e := range ch.Problems {
		var p *formats.Problem
		if errors.As(e, &p) {
			v.Problems = append(v.Problems, problem{File: p.File, Row: p.Row, Column: p.Column, Message: p.Msg})
		} else {
			v.Problems = append(v.Problems, problem{File: src.Label(), Message: e.Error()})
		}
	}
	if asJSON {
		if err := writeJSON(stdout, v); err != nil {
			return err
		}
	} else {
		for _, line := range collapseProblems(ch.Problems) {
			fmt.Fprintln(stdout, line)
		}
		for _, u := range unchecked {
			fmt.Fprintf(stderr, "%s: not checked: %s\n", src.Label(), u)
		}
		for _, n := range ch.Notes() {
			fmt.Fprintf(stderr, "%s: %s\n", src.Label(), n)
		}
		if v.Valid {
			fmt.Fprintf(stdout, "%s: %d rows, valid\n", src.Label(), ch.Rows)
		}
	}
	if !v.Valid {
		more := ""
		if ch.Total > len(ch.Problems) {
			more = fmt.Sprintf(" (the first %d are shown)", len(ch.Problems))
		}
		return &exitError{code: exitUsage, err: fmt.Errorf("%w: %s: %d problems in %d rows%s", pipeline.ErrInvalid, src.Label(), ch.Total, ch.Rows, more)}
	}
	return nil
}

// shownOfAKind is how many problems of one kind the text output tells one
// by one before it counts the rest in one line.
const shownOfAKind = 3

var (
	quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"(?:…\(\d+ bytes\))?`)
	digits      = regexp.MustCompile(`\d+`)
)

// problemKind is what makes two problems "of one kind": the same file and
// column, and the same message once the values it quotes and the numbers
// it names are left out.
func problemKind(p *formats.Problem) string {
	shape := digits.ReplaceAllString(quotedValue.ReplaceAllString(p.Msg, `"…"`), "N")
	return p.File + "\x00" + p.Column + "\x00" + shape
}

// collapseProblems is the text output's list of problems (already in
// order): past the first shownOfAKind of one kind, one line counts the rest
// and says up to which row they go. Sixty-seven lines that one flag fixes
// buried the one line that needed a look; --output json keeps each.
func collapseProblems(problems []error) []string {
	total := map[string]int{}
	last := map[string]int{}
	for _, e := range problems {
		var p *formats.Problem
		if errors.As(e, &p) {
			k := problemKind(p)
			total[k]++
			last[k] = p.Row
		}
	}
	seen := map[string]int{}
	var out []string
	for _, e := range problems {
		var p *formats.Problem
		if !errors.As(e, &p) {
			out = append(out, e.Error())
			continue
		}
		k := problemKind(p)
		seen[k]++
		n := total[k]
		switch {
		// One more is told as it is: a count line would be no shorter.
		case seen[k] <= shownOfAKind || n == shownOfAKind+1:
			out = append(out, p.Error())
		case seen[k] == shownOfAKind+1:
			c := *p
			c.Msg = fmt.Sprintf("%d more of this kind, up to row %d (validate --output json lists each): %s", n-shownOfAKind, last[k], p.Msg)
			out = append(out, c.Error())
		}
	}
	return out
}
