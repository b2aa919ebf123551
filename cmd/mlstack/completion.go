package main

import (
	"fmt"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

// The completion scripts ask mlstack itself (the hidden
// --generate-bash-completion flag of urfave/cli) for the commands and
// flags that fit: the scripts never go stale.

// bashCompletion reads the words before the cursor (and the one under it,
// when it starts a flag) without eval, so nothing typed is run.
const bashCompletion = `# mlstack completion for bash: add to ~/.bashrc
#   eval "$(mlstack completion bash)"
_mlstack() {
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
	local -a args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	[[ $cur == -* ]] && args+=("$cur")
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _mlstack mlstack
`

const zshCompletion = `#compdef mlstack
# mlstack completion for zsh: add to ~/.zshrc (after compinit)
#   eval "$(mlstack completion zsh)"
_mlstack() {
	local -a opts args
	local cur=${words[CURRENT]}
	args=("${(@)words[2,CURRENT-1]}")
	[[ $cur == -* ]] && args+=("$cur")
	opts=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[1]} "${args[@]}" --generate-bash-completion 2>/dev/null)}")
	if [[ -n ${opts[1]} ]]; then
		_describe 'mlstack' opts
	else
		_files
	fi
}
compdef _mlstack mlstack
`

func completionCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Completes commands and flags.\n\n" + examples(
			`eval "$(mlstack completion bash)"    # in ~/.bashrc`,
			`eval "$(mlstack completion zsh)"     # in ~/.zshrc, after compinit`,
			`mlstack completion fish > ~/.config/fish/completions/mlstack.fish`),
		Action: func(c *cli.Context) error {
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				var err error
				if script, err = c.App.ToFishCompletion(); err != nil {
					return fmt.Errorf("writing the fish completion: %w", err)
				}
			default:
				return &provision.UsageError{Msg: fmt.Sprintf("completion %q: give bash, zsh or fish (see `mlstack completion --help`)", shell)}
			}
			_, err := fmt.Fprint(s.stdout, script)
			return err
		},
	}
}
