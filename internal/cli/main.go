// Package cli is the driftline command line: the pipeline, serving, ingest and API servers and
// the operator commands (runs, approvals, schedules, models, audit). cmd/driftline runs it as
// it is; cmd/driftline-dev adds the demo and its development tools (package devcli).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/driftline/driftline/internal/telemetry"
)

// Command is one subcommand: its summary for the usage text, and what it runs.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string) error
}

type command = Command

var commands = map[string]command{
	"setup":    {"create the bucket and the Temporal search attributes", cmdSetup},
	"worker":   {"run the pipeline worker (task queue driftline-pipeline)", cmdWorker},
	"serve":    {"run the serving worker (HTTP predictions)", cmdServe},
	"run":      {"start the continuous-training loop for a model spec and follow it", cmdRun},
	"status":   {"show a run's status", cmdStatus},
	"approve":  {"approve the candidate a run is waiting on", func(ctx context.Context, a []string) error { return cmdDecide(ctx, a, true) }},
	"reject":   {"reject the candidate a run is waiting on", func(ctx context.Context, a []string) error { return cmdDecide(ctx, a, false) }},
	"schedule": {"create or delete a retraining schedule", cmdSchedule},
	"models":   {"list a model's versions (models show: one version's lineage; models alias)", cmdModels},
	"rollback": {"restore a model's previous production version", cmdRollback},
	"promote":  {"make a registered version production", cmdPromote},
	"audit":    {"list audit records", cmdAudit},
	"predict":  {"send one prediction request to the serving worker", cmdPredict},
	"api":      {"run the control-plane API: every change, authenticated, authorised and audited", cmdAPI},
	"token":    {"mint a development token for `driftline api --dev` (HS256)", cmdToken},
	"console":  {"serve the read-only web console: models, runs, lineage, monitoring (docs/observability.md)", cmdConsole},
	"drift":    {"show a run's drift report, or drift of live predictions", cmdDrift},
	"monitor":  {"start, stop or show a model's monitor (monitor start|stop|status|report)", cmdMonitor},
	"ingest":   {"run an ingest worker: Kafka topics into a dataset, exactly once (docs/ingest.md)", cmdIngest},
	"features": {"feature definitions: plan, apply (through the API), get a point-in-time vector", cmdFeatures},
}

func init() {
	// Registered here: the completion script lists the commands map.
	commands["completion"] = command{"print a shell completion script (completion bash|zsh)", cmdCompletion}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: driftline <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'driftline <command> -h' for a command's flags. Temporal is configured by TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, S3 by DRIFTLINE_S3_*.")
}

// Main runs the command os.Args names, from the production commands and extra (the
// development binary's), and exits.
func Main(extra map[string]Command) {
	for name, c := range extra {
		commands[name] = c
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "driftline: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
	shutdown, err := telemetry.Init(ctx, "driftline-"+os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftline %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	err = cmd.Run(ctx, os.Args[2:])
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := shutdown(sctx); serr != nil {
		slog.Warn("flushing traces", "error", serr)
	}
	cancel()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "driftline %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
