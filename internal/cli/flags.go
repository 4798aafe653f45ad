package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftline/driftline/internal/config"
)

// EnvFlag declares a string flag whose default comes from the environment variable env
// (config.StringEnv: the variable is named once, there, and shown in the help).
func EnvFlag(fs *pflag.FlagSet, name, env, def, usage string) *string {
	p := new(string)
	config.StringEnv(fs, p, name, env, def, usage)
	return p
}

// Env is the environment variable key, or def when it is unset or empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ModelFlag declares --model, the model the command acts on: required (there is no default
// model), from DRIFTLINE_MODEL for a shell that works on one model.
func ModelFlag(cmd *cobra.Command, usage string) *string {
	fs := cmd.Flags()
	p := EnvFlag(fs, "model", "DRIFTLINE_MODEL", "", usage+"; required")
	_ = fs.SetAnnotation("model", requiredAnnotation, []string{"the model it acts on"})
	return p
}

// usageArgs makes a refusal of the positional arguments a usage error (exit status 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{cmd, err}
		}
		return nil
	}
}

// NoArgs refuses positional arguments as a usage error.
var NoArgs = usageArgs(cobra.NoArgs)

// parent is a command that only holds subcommands: run without one, it is a usage error
// naming them.
func parent(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{cmd, fmt.Errorf("%s needs a subcommand", cmd.CommandPath())}
		}
		return usageError{cmd, fmt.Errorf("unknown subcommand %q for %q", args[0], cmd.CommandPath())}
	}}
	cmd.AddCommand(subs...)
	return cmd
}

// isUsage says whether err is cobra's refusal of an unknown command.
func isUsage(err error) bool {
	var u usageError
	return err != nil && (errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command "))
}
