package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// manExtra is what the man page says beyond the commands and flags that
// urfave/cli documents from the app itself.
const manExtra = `
# EXIT CODES

**0**
: every row done (done, unchanged or skipped)

**1**
: some rows failed; each is journaled with its reason

**2**
: usage error or invalid manifest: nothing was sent

**3**
: stopped early (interrupted, server unreachable, token refused): run the same command again to resume

# ENVIRONMENT

**SYNBATCH_SERVER**, **SYNBATCH_TOKEN**, **SYNBATCH_TOKEN_FILE**, **SYNBATCH_CONFIG**
: the server and admin token, as the flags of the same names

**SYNBATCH_OUTPUT**
: human or json, as --output

# FILES

*~/.config/synbatch.yaml*
: the config file (server, token or token_file); synadm's *~/.config/synadm.yaml* is read when it is missing

*MANIFEST.journal.jsonl*
: the result journal of a run of apply on MANIFEST; running the same command again resumes from it

# EXAMPLES

Check a manifest, see what it would change, then apply it:

    synbatch validate users.csv
    synbatch plan users.csv
    synbatch apply users.csv --passwords-out passwords.csv

Every user, as a spreadsheet:

    synbatch export users --out users.xlsx

# SEE ALSO

synadm(1)
`

func manCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the man page (roff); make release and the Debian package install it as synbatch.1",
		Description: `   synbatch man | gzip -9n > /usr/local/share/man/man1/synbatch.1.gz
   synbatch man | man -l -`,
		Action: func(c *cli.Context) error {
			page, err := manPage(c.App)
			if err != nil {
				return err
			}
			_, err = io.WriteString(stdout, page)
			return err
		},
	}
}

// manPage renders the app's own documentation, with exit codes,
// environment, files and examples, as a section 1 man page.
func manPage(app *cli.App) (string, error) {
	md, err := app.ToMarkdown()
	if err != nil {
		return "", fmt.Errorf("man page: %w", err)
	}
	// urfave/cli's synopsis block shows "synbatch" followed by every
	// global flag; the usage line below it says it better.
	var b strings.Builder
	fmt.Fprintf(&b, "%% %s 1\n\n", app.Name)
	b.WriteString(strings.TrimSpace(md))
	b.WriteString("\n")
	b.WriteString(manExtra)
	return string(md2man.Render([]byte(b.String()))), nil
}
