package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/tablewatch"
)

// watchTableCmd follows a table dataset's new versions (docs/data.md, "Following a table").
func watchTableCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "watch-table", Short: "follow a model's table dataset: a new version that closes a day starts the loop (or signals the monitor)", Args: NoArgs,
		Example: `  driftline watch-table --model demand --interval 1m --iceberg-catalog lake=postgres://driftline@lake-db/catalog`}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := fs.String("model", "", "model whose registered spec's dataset.table is followed")
	action := fs.String("action", "run", "what a closed day starts: run (the loop on the window ending that day) or monitor (the monitor's next window at once)")
	interval := fs.Duration("interval", time.Minute, "how often the table's latest version is read")
	catalogs := fs.StringArray("iceberg-catalog", nil, "NAME=postgres://... an Iceberg SQL catalog the spec's dataset.table.catalog may name (repeatable; also DRIFTLINE_ICEBERG_CATALOGS)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *model == "" || (*action != "run" && *action != "monitor") || *interval <= 0 {
			return usageError{cmd, fmt.Errorf("--model is required, --action is run or monitor (got %q), --interval positive", *action)}
		}
		cs, err := openCatalogs(append(strings.Fields(os.Getenv("DRIFTLINE_ICEBERG_CATALOGS")), *catalogs...))
		if err != nil {
			return usageError{cmd, err}
		}
		defer closeCatalogs(cs)
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		reg := registry.New(b)
		sp, _, _, err := reg.CurrentSpec(ctx, *model)
		if err != nil {
			return err
		}
		if sp.Dataset.Table == nil {
			return fmt.Errorf("model %s's dataset %s is not a table (dataset.table): its day partitions need no watcher", *model, sp.Dataset.Name)
		}
		c, err := config.TemporalClient()
		if err != nil {
			return err
		}
		defer c.Close()
		run, monitor := runOnTableDay(c, reg, *model), starter.MonitorOnClosedDay(c, *model, "tablewatch", sp.Dataset.Name)
		w := &tablewatch.Watcher{Store: b, Dataset: sp.Dataset.Name, Table: *sp.Dataset.Table, EventTime: sp.Dataset.EventTime, Catalogs: cs,
			Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
		w.OnClosed = func(ctx context.Context, cl tablewatch.Closed) error {
			if *action == "monitor" {
				return monitor(ctx, cl.Day)
			}
			return run(ctx, cl.Day, fmt.Sprintf("table %s version %d closed day %s", cl.URI, cl.Version, cl.Day))
		}
		fmt.Printf("watching %s table %s of model %s every %s: a closed day starts a %s\n", sp.Dataset.Table.Format,
			strings.TrimPrefix(sp.Dataset.Table.Path+" "+sp.Dataset.Table.Catalog+" "+sp.Dataset.Table.Name, " "), *model, *interval, *action)
		return w.Run(ctx, *interval)
	}
	return cmd
}

// runOnTableDay is the watcher's trigger for action run: the loop on the window ending the
// closed day with the model's registered spec (read at that moment: the spec the API applied,
// never one the watcher holds), requested by tablewatch. A run in progress is
// pipeline.ErrRunInProgress.
func runOnTableDay(c client.Client, reg *registry.Registry, model string) func(ctx context.Context, day, reason string) error {
	return func(ctx context.Context, day, reason string) error {
		sp, ver, _, err := reg.CurrentSpec(ctx, model)
		if err != nil {
			return err
		}
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		from := d.AddDate(0, 0, 1-sp.Dataset.WindowDays).Format(time.DateOnly)
		_, err = starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: from, To: day, RequestedBy: "tablewatch", Reason: reason, SpecVersion: ver.Version})
		return err
	}
}
