package main

import (
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError turns urfave/cli's parse error into an exit-2 error, with the
// nearest flag of the command when the one given is unknown:
// "unknown flag --on-exist: did you mean --on-exists?".
func usageError(c *cli.Context, err error) error {
	const unknown = "flag provided but not defined: "
	msg := err.Error()
	if !strings.HasPrefix(msg, unknown) {
		return &exitError{code: exitUsage, err: err}
	}
	given := strings.TrimLeft(strings.TrimPrefix(msg, unknown), "-")
	flags := c.App.Flags
	if c.Command != nil && c.Command.Name != "" {
		flags = c.Command.Flags
	}
	if s := suggestFlag(given, flags); s != "" {
		return usageErr("unknown flag %s: did you mean %s? (--help lists the flags)", dashes(given), dashes(s))
	}
	return usageErr("unknown flag %s (--help lists the flags)", dashes(given))
}

// suggestFlag names the flag closest to a mistyped one, by the rule
// suggest uses for commands.
func suggestFlag(name string, flags []cli.Flag) string {
	named := make([]*cli.Command, 0, len(flags))
	for _, f := range flags {
		named = append(named, &cli.Command{Name: f.Names()[0], Aliases: f.Names()[1:]})
	}
	return suggest(name, named)
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Flag categories, in the order a reader meets the questions: what is read,
// how rows find their users, passwords, how hard the server is pushed, what
// guards a run, what comes out, and which server.
const (
	catInput       = "1. Input"
	catMatching    = "2. Matching"
	catPasswords   = "3. Passwords"
	catConcurrency = "4. Concurrency and retries"
	catSafety      = "5. Safety"
	catOutput      = "6. Output"
	catFilters     = "7. Filters"
	catServer      = "8. Server and token"
)

// flagCategory is the help section of a flag, by name; "" leaves it with
// the command's own, unnamed ones.
func flagCategory(name string) string {
	switch name {
	case "sheet", "map", "ignore", "rows", "action", "action-value", "replace-lists", "auth-provider", "phone-region", "users", "shard", "shards", "inactive-days", "task-timeout":
		return catInput
	case "match-by", "on-exists":
		return catMatching
	case "generate-passwords", "passwords-out", "tokens-out", "resend-uncertain":
		return catPasswords
	case "concurrency", "max-concurrency", "rate", "retries", "down-limit":
		return catConcurrency
	case "yes", "dry-run", "allow-changed", "allow-unknown-provider", "sync", "sync-scope", "sync-max":
		return catSafety
	case "output", "list", "journal", "out", "format", "verbose", "media", "archive", "events", "events-page-size", "events-scan-rooms":
		return catOutput
	case "name", "user-id", "deactivated", "guests", "no-guests", "admins-only", "user-type", "search", "members":
		return catFilters
	case "server", "token-file", "config", "server-name", "admin-path", "ca-file", "insecure", "timeout", "mas-client-id", "mas-client-secret-file", "mas-url":
		return catServer
	}
	return ""
}

// commandExamples are the worked examples each command's help ends with,
// by the command's full name.
func commandExamples(path string) string {
	switch path {
	case "validate":
		return `   synbatch validate users.csv
   synbatch validate staff.xlsx --sheet Joiners --generate-passwords
   synbatch validate idp-export.csv --match-by external_id:oidc --auth-provider oidc`
	case "plan":
		return `   synbatch plan users.csv
   synbatch plan leavers.csv --action deactivate --output json > plan.json
   synbatch plan users.csv -c ~/.config/synadm.yaml`
	case "apply":
		return `   synbatch apply users.csv --generate-passwords --passwords-out passwords.csv
   synbatch apply leavers.csv --action deactivate --yes --journal leavers.journal.jsonl
   synbatch apply users.csv --rate 20 --shard 0/4     # one of four operators' shares
   (run the same command again to resume a run that stopped)`
	case "export users":
		return `   synbatch export users --out users.xlsx
   synbatch export users --out - --format jsonl --deactivated | jq .user_id
   synbatch export users --out bots.csv --user-type bot`
	case "export rooms":
		return `   synbatch export rooms --out rooms.csv
   synbatch export rooms --out rooms.xlsx --search project --members`
	case "export data":
		return `   synbatch export data --users leavers.csv --out handover/ --archive
   synbatch export data --users leavers.csv --out audit/ --media`
	case "journal summary":
		return `   synbatch journal summary users.csv.journal.jsonl
   synbatch journal summary users.csv.journal.jsonl --output json > summary.json`
	case "journal merge":
		return `   synbatch journal merge users.csv.shard-*-of-4.journal.jsonl
   synbatch journal merge users.csv.shard-*-of-4.journal.jsonl --out users.journal.jsonl`
	case "completion":
		return `   source <(synbatch completion bash)
   synbatch completion fish > ~/.config/fish/completions/synbatch.fish`
	case "man":
		return `   synbatch man | man -l -`
	}
	return ""
}

// teachHelp gives every command's help its flags in categories, worked
// examples and the exit codes.
func teachHelp(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		path := strings.TrimSpace(parent + " " + c.Name)
		for _, f := range c.Flags {
			setCategory(f, flagCategory(f.Names()[0]))
		}
		if len(c.Subcommands) > 0 {
			teachHelp(c.Subcommands, path)
			continue
		}
		tmpl := cli.CommandHelpTemplate
		if ex := commandExamples(path); ex != "" {
			tmpl += "\nEXAMPLES:\n" + ex + "\n"
		}
		c.CustomHelpTemplate = tmpl + "\n" + exitHelp + "\n"
	}
}

// setCategory sets the category of a flag that names none. Every urfave/cli
// flag type has a Category field, but no interface sets it.
func setCategory(f cli.Flag, cat string) {
	v := reflect.ValueOf(f)
	if cat == "" || v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	if field := v.Elem().FieldByName("Category"); field.CanSet() && field.Kind() == reflect.String && field.String() == "" {
		field.SetString(cat)
	}
}
