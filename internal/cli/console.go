package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/console"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/starter"
)

// temporalLive answers the console's runs still going with the workflow's status query.
type temporalLive struct{ c client.Client }

func (t temporalLive) Status(ctx context.Context, model, runID string) (pipeline.Status, error) {
	return starter.Status(ctx, t.c, model, runID)
}

func consoleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "console", Short: "serve the read-only web console: models, runs, lineage, monitoring", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	tf := addTokenFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8091", "HTTP address")
	noTemporal := fs.Bool("no-temporal", false, "read S3 only: finished runs, no live status of runs still going")
	jaeger := EnvFlag(fs, "jaeger", "DRIFTLINE_JAEGER_URL", "", "Jaeger's query API (e.g. http://jaeger:16686) for each run's trace (empty: no trace pages)")
	jaegerService := fs.String("jaeger-service", "driftline-worker", "the service whose spans carry the runs' IDs in Jaeger (the pipeline worker's)")
	prom := EnvFlag(fs, "prometheus", "DRIFTLINE_PROMETHEUS", "", "Prometheus (e.g. http://prometheus:9090) to draw the Grafana dashboards' panels from, at /dashboards (empty: the pages say so)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		verifier, err := tf.verifier("the console")
		if err != nil {
			return err
		}
		engine, err := loadEngine(ctx, *rbacPath)
		if err != nil {
			return err
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		s := &console.Server{Store: b, Registry: registry.New(b), Verifier: verifier, Engine: engine,
			RunLink: func(model, runID string) string {
				return starter.UILink(config.Namespace(), pipeline.WorkflowID(model), runID)
			}}
		if *jaeger != "" {
			s.Traces = console.Jaeger{URL: *jaeger, Service: *jaegerService}
		}
		if *prom != "" {
			s.Metrics = console.Prometheus{URL: *prom}
		}
		if !*noTemporal {
			c, err := config.TemporalClient()
			if err != nil {
				return fmt.Errorf("%w (or run with --no-temporal to show finished runs only)", err)
			}
			defer c.Close()
			s.Live = temporalLive{c}
		}
		return serveHTTP(ctx, *listen, s.Handler(), fmt.Sprintf("console on http://%s (sign in with a token the API accepts; read-only)", *listen))
	}
	return cmd
}
