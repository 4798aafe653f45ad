package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// cmdCompletion prints a shell completion script: `source <(driftline completion bash)`, or
// for zsh `source <(driftline completion zsh)`. Commands complete from the list; a word
// starting with - completes from the command's own flags (asked of `driftline <cmd> -h`).
func cmdCompletion(_ context.Context, args []string) error {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		return fmt.Errorf("usage: driftline completion bash|zsh (then: source <(driftline completion bash))")
	}
	fmt.Print(completionScript(args[0]))
	return nil
}

func completionScript(shell string) string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	script := fmt.Sprintf(`# driftline %s completion: source <(driftline completion %s)
_driftline() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    local flags
    flags=$(driftline "${COMP_WORDS[1]}" -h 2>&1 | sed -n 's/^  -\([a-zA-Z0-9-]*\).*/--\1/p')
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -F _driftline driftline
`, shell, shell, strings.Join(names, " "))
	if shell == "zsh" {
		script = "autoload -U +X bashcompinit && bashcompinit\n" + script
	}
	return script
}
