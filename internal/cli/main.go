// Package cli is the driftline command line: the pipeline, serving and ingest workers, the
// control-plane API and console, and the operator commands (runs, approvals, schedules, models,
// audit), on spf13/cobra. cmd/driftline runs it as it is; cmd/driftline-dev adds the demo and
// its development tools (package devcli).
//
// Every subcommand is one cobra.Command whose flags are its own; the shared flag groups are
// config.S3Flags, APIFlags, ModelFlag and the output flags, and the Temporal group sits on the
// root. A flag that reads the environment names its variable once, where it is declared
// (config.StringEnv).
package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/telemetry"
)

// Root is driftline's command tree: the production commands, and extra (driftline-dev's).
func Root(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "driftline",
		Short: "Driftline keeps machine-learning models right in production: retraining as durable Temporal workflows",
		Long: "Driftline keeps machine-learning models right in production: retraining as durable Temporal workflows.\n\n" +
			"Temporal is configured by --temporal-address / TEMPORAL_ADDRESS and the SDK's environment, S3 by --s3-* / DRIFTLINE_S3_*;\n" +
			"changes go through the control-plane API with your token (DRIFTLINE_TOKEN). docs/operating.md has the reference.",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: requireFlags,
	}
	config.TemporalFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{c, err} })
	root.AddGroup(&cobra.Group{ID: "run", Title: "Running Driftline:"}, &cobra.Group{ID: "operate", Title: "Operating models:"})
	for _, c := range []*cobra.Command{setupCmd(), workerCmd(), trainerCmd(), serveCmd(), apiCmd(), consoleCmd(), ingestCmd(), watchTableCmd(), tokenCmd(), rolloutCmd(), edgeCmd()} {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{runCmd(), statusCmd(), decideCmd(true), decideCmd(false), scheduleCmd(), modelsCmd(), rollbackCmd(),
		promoteCmd(), auditCmd(), predictCmd(), driftCmd(), monitorCmd(), featuresCmd(), fleetCmd()} {
		c.GroupID = "operate"
		root.AddCommand(c)
	}
	if len(extra) > 0 {
		root.AddGroup(&cobra.Group{ID: "dev", Title: "Development (driftline-dev only):"})
	}
	root.AddCommand(extra...)
	root.InitDefaultCompletionCmd() // completion bash|zsh|fish|powershell, in the tree (and its help) from the start
	return root
}

// usageError is a command line the command does not take: exit status 2 and its usage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// requiredAnnotation marks a flag that must not be empty (set or from its environment
// variable): cobra's own required flags count only flags given on the command line.
const requiredAnnotation = "driftline_required"

// requireFlags refuses a command whose required flag is empty, naming the flag and its variable.
func requireFlags(cmd *cobra.Command, _ []string) error {
	var missing error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[requiredAnnotation]; !ok || f.Value.String() != "" || missing != nil {
			return
		}
		missing = fmt.Errorf("--%s is required: %s", f.Name, f.Annotations[requiredAnnotation][0])
		if env := f.Annotations["env"]; len(env) > 0 {
			missing = fmt.Errorf("%w (or set %s)", missing, env[0])
		}
	})
	return missing
}

// Execute runs the command line args against a new command tree (tests run commands so).
func Execute(ctx context.Context, args []string, extra ...*cobra.Command) error {
	root := Root(extra...)
	root.SetArgs(args)
	_, err := root.ExecuteContextC(ctx)
	return err
}

// Main runs the command os.Args names, from the production commands and extra (the
// development binary's), and exits: 0 done, 1 failed, 2 a command line it does not take.
func Main(extra ...*cobra.Command) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := Root(extra...)
	name := "driftline"
	if c, _, err := root.Find(os.Args[1:]); err == nil && c != root {
		name += "-" + c.Name()
	}
	// Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
	shutdown, err := telemetry.Init(ctx, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	cmd, err := root.ExecuteContextC(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := shutdown(sctx); serr != nil {
		slog.Warn("flushing traces", "error", serr)
	}
	cancel()
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", cmd.CommandPath(), err)
	if isUsage(err) {
		fmt.Fprintf(os.Stderr, "\n%s", cmd.UsageString())
		os.Exit(2)
	}
	os.Exit(1)
}
