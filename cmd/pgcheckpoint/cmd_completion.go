package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// cmdCompletion prints a shell completion script: commands, and each command's flags as its help lists
// them (so the script cannot drift from --help).
func cmdCompletion(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "completion")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var names []string
	flagsOf := map[string][]string{}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		names = append(names, c.name)
		flagsOf[c.name] = commandFlags(ctx, c)
	}
	switch pos[0] {
	case "bash", "zsh":
		var b strings.Builder
		if pos[0] == "zsh" {
			b.WriteString("# zsh completion for pgcheckpoint: eval \"$(pgcheckpoint completion zsh)\" in ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n")
		} else {
			b.WriteString("# bash completion for pgcheckpoint: eval \"$(pgcheckpoint completion bash)\" in ~/.bashrc\n")
		}
		b.WriteString("_pgcheckpoint() {\n  local cur=${COMP_WORDS[COMP_CWORD]} flags=\n")
		fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " ")+" help --help --version")
		b.WriteString("  case \"${COMP_WORDS[1]}\" in\n")
		for _, n := range names {
			fmt.Fprintf(&b, "    %s) flags=%q ;;\n", n, strings.Join(flagsOf[n], " "))
		}
		fmt.Fprintf(&b, "    help) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", strings.Join(names, " "))
		b.WriteString("  esac\n  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W \"$flags --help\" -- \"$cur\"))\n  fi\n}\ncomplete -o default -F _pgcheckpoint pgcheckpoint\n")
		_, err = io.WriteString(e.stdout, b.String())
		return err
	case "fish":
		var b strings.Builder
		b.WriteString("# fish completion for pgcheckpoint: pgcheckpoint completion fish > ~/.config/fish/completions/pgcheckpoint.fish\ncomplete -c pgcheckpoint -f\n")
		for _, c := range commands() {
			if c.hidden {
				continue
			}
			fmt.Fprintf(&b, "complete -c pgcheckpoint -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
			for _, fl := range flagsOf[c.name] {
				fmt.Fprintf(&b, "complete -c pgcheckpoint -n '__fish_seen_subcommand_from %s' -l %s\n", c.name, strings.TrimPrefix(fl, "--"))
			}
		}
		_, err = io.WriteString(e.stdout, b.String())
		return err
	}
	return usageErrorf("completion: unknown shell %q: bash, zsh or fish", pos[0])
}

var helpFlag = regexp.MustCompile(`(?m)^  (--[a-z-]+)`)

// commandFlags are the flags c's --help lists.
func commandFlags(ctx context.Context, c command) []string {
	if c.name == "completion" {
		return nil
	}
	var out bytes.Buffer
	_ = c.run(ctx, env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard}, []string{"--help"})
	var fl []string
	for _, m := range helpFlag.FindAllStringSubmatch(out.String(), -1) {
		fl = append(fl, m[1])
	}
	return fl
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
