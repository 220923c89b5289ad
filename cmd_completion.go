package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/jobs"
)

// Completion works the way gh's and cobra's do: the shell script is thin and
// asks the binary itself (`synbatch __complete WORDS…`) what may follow, so
// the three shells complete the same commands, flags, flag values and files,
// and a new flag completes without a new script.
//
// __complete prints one candidate a line, as "word" or "word<TAB>what it
// is"; a line ":files EXT…" asks the shell for files with those extensions
// (and directories), ":files" alone for any file.

func completionCommand(stdout io.Writer) *cli.Command {
	script := func(name, text string) *cli.Command {
		return &cli.Command{
			Name:  name,
			Usage: "print the " + name + " completion script",
			Action: func(*cli.Context) error {
				_, err := io.WriteString(stdout, text)
				return err
			},
		}
	}
	return &cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script: bash, zsh or fish",
		Description: `Completes commands, flags, the values of --action, --on-exists, --match-by,
--output and --format, and manifests, journals and config files by extension.

The Debian package installs the scripts; otherwise:

   bash:  synbatch completion bash > /etc/bash_completion.d/synbatch
          (or: source <(synbatch completion bash) in ~/.bashrc)
   zsh:   synbatch completion zsh > "${fpath[1]}/_synbatch"
   fish:  synbatch completion fish > ~/.config/fish/completions/synbatch.fish`,
		ArgsUsage: "bash|zsh|fish",
		Subcommands: []*cli.Command{
			script("bash", bashCompletion),
			script("zsh", zshCompletion),
			script("fish", fishCompletion),
		},
	}
}

// completeCommand is the hidden command the scripts call.
func completeCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		HideHelp:        true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				args = []string{""}
			}
			for _, line := range complete(c.App, args) {
				if _, err := fmt.Fprintln(stdout, line); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// flagValues lists what a flag that takes a value may be given: words, or
// a ":files" line. A flag not listed takes free text (a URL, a name).
func flagValues(name string) []string {
	switch name {
	case "action":
		var acts []string
		for _, a := range jobs.Actions() {
			acts = append(acts, string(a))
		}
		return acts
	case "on-exists":
		return []string{"skip", "update", "fail"}
	case "match-by":
		return []string{"user_id", "email", "external_id:"}
	case "output", "o":
		return []string{"human", "json"}
	case "format":
		return []string{"csv", "jsonl"}
	case "config", "c":
		return []string{filesLine("yaml", "yml")}
	case "journal":
		return []string{filesLine("jsonl")}
	case "users":
		return []string{filesLine("csv", "tsv", "xlsx", "jsonl")}
	case "token-file", "ca-file", "passwords-out", "tokens-out", "out":
		return []string{filesLine()}
	}
	return nil
}

// argValues lists what a command's arguments may be.
func argValues(path string) []string {
	switch path {
	case "validate", "plan", "apply":
		return []string{filesLine("csv", "tsv", "xlsx", "ods", "jsonl", "ndjson")}
	case "journal summary", "journal merge", "journal report":
		return []string{filesLine("jsonl")}
	}
	return nil
}

func filesLine(exts ...string) string {
	return strings.TrimSpace(":files " + strings.Join(exts, " "))
}

// complete returns the candidates for the last of words, the one being
// typed; the words before it are the command line after "synbatch".
func complete(app *cli.App, words []string) []string {
	cur, before := words[len(words)-1], words[:len(words)-1]
	// bash splits "--on-exists=sk" into "--on-exists", "=", "sk".
	if n := len(before); n >= 2 && before[n-1] == "=" && strings.HasPrefix(before[n-2], "-") {
		return matching(flagValues(strings.TrimLeft(before[n-2], "-")), cur, "")
	}
	if n := len(before); n >= 1 && before[n-1] == "=" {
		before = before[:n-1]
	}
	cmds, flags, path, args := walkWords(app, before)
	// The value of the flag just before, as in "--on-exists sk".
	if n := len(before); n > 0 && strings.HasPrefix(before[n-1], "-") && !strings.Contains(before[n-1], "=") {
		if name := strings.TrimLeft(before[n-1], "-"); takesValue(flags, name) {
			return matching(flagValues(name), cur, "")
		}
	}
	if strings.HasPrefix(cur, "-") {
		if name, value, ok := strings.Cut(cur, "="); ok {
			return matching(flagValues(strings.TrimLeft(name, "-")), value, name+"=")
		}
		return flagCandidates(flags, cur)
	}
	if len(cmds) > 0 && args == 0 {
		var out []string
		for _, c := range cmds {
			if !c.Hidden && strings.HasPrefix(c.Name, cur) {
				out = append(out, c.Name+"\t"+c.Usage)
			}
		}
		return out
	}
	return matching(argValues(strings.Join(path, " ")), cur, "")
}

// walkWords follows the words before the one being typed: the commands
// they name (with the flags and subcommands of the last), and how many
// arguments they give.
func walkWords(app *cli.App, before []string) (cmds []*cli.Command, flags []cli.Flag, path []string, args int) {
	cmds, flags = app.Commands, app.Flags
	for i := 0; i < len(before); i++ {
		w := before[i]
		switch {
		case w == "--":
			args++
		case strings.HasPrefix(w, "-") && len(w) > 1:
			name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if !hasValue && takesValue(flags, name) {
				i++
			}
		default:
			if args == 0 {
				if j := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.HasName(w) }); j >= 0 {
					path = append(path, cmds[j].Name)
					flags, cmds = cmds[j].Flags, cmds[j].Subcommands
					continue
				}
			}
			args++
		}
	}
	return cmds, flags, path, args
}

// flagCandidates are the visible flags whose long name starts with cur.
func flagCandidates(flags []cli.Flag, cur string) []string {
	var out []string
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		long := "--" + f.Names()[0]
		if strings.HasPrefix(long, cur) {
			out = append(out, long+"\t"+flagSummary(f))
		}
	}
	if strings.HasPrefix("--help", cur) {
		out = append(out, "--help\tshow help")
	}
	return out
}

// matching keeps the values that start with prefix, each with lead before
// it; a ":files" line always stays (the shell matches files itself).
func matching(values []string, prefix, lead string) []string {
	var out []string
	for _, v := range values {
		switch {
		case strings.HasPrefix(v, ":files"):
			out = append(out, v)
		case strings.HasPrefix(v, prefix):
			out = append(out, lead+v)
		}
	}
	return out
}

// flagSummary is a flag's usage cut to its first clause, for the shells
// that show a description beside each flag.
func flagSummary(f cli.Flag) string {
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return ""
	}
	s := strings.ReplaceAll(d.GetUsage(), "`", "")
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 70 {
		s = strings.TrimSpace(s[:67]) + "..."
	}
	return s
}

const bashCompletion = `# bash completion for synbatch                              -*- shell-script -*-
# Asks synbatch itself what may follow: synbatch __complete WORDS...

_synbatch() {
    local cur=${COMP_WORDS[COMP_CWORD]} line ext exts
    local IFS=$'\n'
    local out
    out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    COMPREPLY=()
    [[ $cur == "=" ]] && cur=""
    for line in $out; do
        case $line in
        :files*)
            compopt -o filenames 2>/dev/null
            exts=${line#:files}
            if [[ -z $exts ]]; then
                COMPREPLY+=($(compgen -f -- "$cur"))
            else
                COMPREPLY+=($(compgen -d -- "$cur"))
                IFS=' '
                for ext in $exts; do
                    IFS=$'\n' COMPREPLY+=($(compgen -f -X "!*.$ext" -- "$cur"))
                done
                IFS=$'\n'
            fi
            ;;
        *)
            COMPREPLY+=("${line%%$'\t'*}")
            ;;
        esac
    done
}

complete -F _synbatch synbatch
`

const zshCompletion = `#compdef synbatch
# zsh completion for synbatch.
# Asks synbatch itself what may follow: synbatch __complete WORDS...

_synbatch() {
    local -a cands
    local line word desc exts out
    out=$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    for line in "${(@f)out}"; do
        case $line in
        :files*)
            exts=${line#:files}
            exts=${exts# }
            if [[ -z $exts ]]; then
                _files
            else
                _files -g "*.(${exts// /|})"
            fi
            ;;
        *)
            word=${line%%$'\t'*}
            desc=${line#*$'\t'}
            [[ $desc == "$line" ]] && desc=""
            cands+=("${word//:/\\:}${desc:+:$desc}")
            ;;
        esac
    done
    (( ${#cands} )) && _describe -t values synbatch cands
    return 0
}

if [[ $funcstack[1] == _synbatch ]]; then
    _synbatch "$@"
else
    compdef _synbatch synbatch
fi
`

const fishCompletion = `# fish completion for synbatch.
# Asks synbatch itself what may follow: synbatch __complete WORDS...

function __synbatch_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    for line in ($tokens[1] __complete $tokens[2..-1] "$cur" 2>/dev/null)
        if string match -q -- ':files*' $line
            set -l exts (string split -n ' ' -- (string replace -r '^:files ?' '' -- $line))
            for path in (__fish_complete_path $cur)
                set -l name (string split -f1 \t -- $path)
                if test (count $exts) -eq 0; or string match -q -- '*/' $name
                    echo $name
                    continue
                end
                for ext in $exts
                    if string match -q -- "*.$ext" $name
                        echo $name
                        break
                    end
                end
            end
        else
            echo $line
        end
    end
end

complete -c synbatch -f -a '(__synbatch_complete)'
`
