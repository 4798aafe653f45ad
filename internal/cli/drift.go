package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/spf13/cobra"
)

func driftCmd() *cobra.Command {
	return parent("drift", "show a run's drift report, or the drift of live predictions", driftShowCmd(), driftPredictionsCmd())
}

func driftPredictionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "predictions", Short: "the drift of a version's live answers against its holdout predictions", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := ModelFlag(cmd, "model")
	version := fs.Int("version", 0, "version whose live answers to check (default: production)")
	since := fs.Duration("since", time.Hour, "how far back in the prediction log")
	out := addOutput(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		asJSON, err := out.JSON()
		if err != nil {
			return err
		}
		return driftPredictions(ctx, b, *model, *version, *since, asJSON)
	}
	return cmd
}

func driftShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show [RUN_ID]", Short: "a run's drift report (default: the latest run's)", Args: usageArgs(cobra.MaximumNArgs(1))}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := ModelFlag(cmd, "model")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var runID string
		if len(args) > 0 {
			runID = args[0]
		}
		return driftShow(cmd.Context(), s3, *model, runID, out, a)
	}
	return cmd
}

func driftShow(ctx context.Context, s3 *s3store.Config, model, runID string, out *output, a APIClient) error {
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return err
	}
	if runID == "" {
		c, err := config.TemporalClient()
		if err != nil {
			return err
		}
		defer c.Close()
		desc, err := c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID(model), "")
		if err != nil {
			return fmt.Errorf("latest run of %s: %w", model, err)
		}
		runID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	key := keys.Report(model, runID, "drift.json")
	var rep activities.DriftReport
	if *a.Token != "" { // through the API: view on the model
		if err := a.call(func(c *api.Client) error { return reportInto(ctx, c, model, runID, "drift.json", &rep) }); err != nil {
			return err
		}
	} else {
		data, _, err := objstore.ReadAll(ctx, b, key)
		if errors.Is(err, objstore.ErrNotFound) {
			return fmt.Errorf("run %s of %s has no drift report (%s): the run had no production model to compare with, or stopped before the drift step", runID, model, b.URI(key))
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			return fmt.Errorf("%s: %w", b.URI(key), err)
		}
	}
	if asJSON, err := out.JSON(); err != nil {
		return err
	} else if asJSON {
		return printJSON(rep)
	}
	fmt.Printf("drift of %s run %s against v%d\n", rep.Model, rep.RunID, rep.ReferenceVersion)
	PrintReport(os.Stdout, rep.Report)
	return nil
}

func driftPredictions(ctx context.Context, b objstore.Bucket, model string, version int, since time.Duration, asJSON bool) error {
	r := registry.New(b)
	if version == 0 {
		d, _, err := r.Deployment(ctx, model)
		if err != nil {
			return err
		}
		version = d.Production
	}
	ref, err := r.LoadPredictionProfile(ctx, model, version)
	if err != nil {
		return err
	}
	rep, n, err := predlog.Drift(ctx, b, model, version, ref, time.Now().Add(-since), time.Now(), drift.DefaultConfig())
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(rep)
	}
	fmt.Printf("live answers of %s v%d over the last %s (%d answers) against its holdout predictions\n", model, version, since, n)
	PrintReport(os.Stdout, rep)
	return nil
}

// printReport renders a drift report as a table.
func PrintReport(out io.Writer, rep drift.Report) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tKIND\tTEST\tSTATISTIC\tP\tP ADJ\tPSI\tJS\tW1 (STD)\tNULLS (REF)\tDRIFTED\tWHY")
	for _, f := range rep.Features {
		w1 := "-"
		if f.Kind == drift.Numeric {
			w1 = fmt.Sprintf("%.3f", f.WassersteinStd)
		}
		mark := "no"
		if f.Drifted {
			mark = "YES"
		}
		if f.Critical {
			mark += " (critical)"
		}
		nulls := fmt.Sprintf("%.1f%% (%.1f%%)", 100*f.NullShare, 100*f.ReferenceNullShare)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%.2g\t%.2g\t%.3f\t%.3f\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Test, f.Statistic, f.PValue, f.PAdjusted, f.PSI, f.JS, w1, nulls, mark, f.Why)
	}
	_ = tw.Flush()
	c := rep.Config
	fmt.Fprintf(out, "\ndecision: drifted=%t, %s\n", rep.Drifted, rep.Why)
	fmt.Fprintf(out, "rule: adjusted p (%s) < %.3g and an effect over its threshold (PSI %.3g, KS %.3g, JS %.3g, W1 %.3g std); window drifts at share %.2f",
		c.Correction, c.Alpha, c.PSI, c.KS, c.JS, c.Wasserstein, c.DriftShare)
	if len(c.Critical) > 0 {
		fmt.Fprintf(out, " or when a critical feature (%s) drifts", strings.Join(c.Critical, ", "))
	}
	fmt.Fprintln(out)
}
