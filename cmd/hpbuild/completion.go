package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion asks hpbuild itself for the words (urfave/cli's
// --generate-bash-completion), so it follows the CLI definition.
const bashCompletion = `# bash completion for hpbuild: source it, or put it in
# /etc/bash_completion.d/hpbuild (hpbuild completion bash > ...)
_hpbuild_complete() {
	local cur words
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == "--" ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" - --generate-bash-completion 2>/dev/null)
	elif [[ "$cur" == "-"* ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
	return 0
}
complete -o bashdefault -o default -F _hpbuild_complete hpbuild
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		UsageText: "hpbuild completion bash|zsh|fish",
		Description: `Completion prints a completion script made from hpbuild's own command
and flag definitions.

Examples:
  hpbuild completion bash > /etc/bash_completion.d/hpbuild
  source <(hpbuild completion zsh)
  hpbuild completion fish > ~/.config/fish/completions/hpbuild.fish`,
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "SHELL"); err != nil {
				return err
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("fish completion: %w", err)
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return usageErrorf(c, "unknown shell %q (want bash, zsh or fish)", sh)
			}
			return nil
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:      "man",
		Usage:     "print the manual page (roff), made from the command definitions",
		UsageText: "hpbuild man",
		Description: `Man prints hpbuild(1) in roff, generated from the same definitions as
the help.

Examples:
  hpbuild man > /usr/local/share/man/man1/hpbuild.1
  hpbuild man | man -l -`,
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("man page: %w", err)
			}
			fmt.Fprint(c.App.Writer, s)
			return nil
		},
	}
}
