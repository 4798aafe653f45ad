package cli

import (
	"context"
	"flag"
	"fmt"

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

func cmdConsole(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	tf := addTokenFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8091", "HTTP address")
	noTemporal := fs.Bool("no-temporal", false, "read S3 only: finished runs, no live status of runs still going")
	jaeger := fs.String("jaeger", Env("DRIFTLINE_JAEGER_URL", ""), "Jaeger's query API (e.g. http://jaeger:16686) for each run's trace (env DRIFTLINE_JAEGER_URL; empty: no trace pages)")
	jaegerService := fs.String("jaeger-service", "driftline-worker", "the service whose spans carry the runs' IDs in Jaeger (the pipeline worker's)")
	prom := fs.String("prometheus", Env("DRIFTLINE_PROMETHEUS_URL", ""), "Prometheus (e.g. http://prometheus:9090) to draw the Grafana dashboards' panels from, at /dashboards (env DRIFTLINE_PROMETHEUS_URL; empty: the pages say so)")
	if err := Parse(fs, args); err != nil {
		return err
	}
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
			return starter.UILink(Namespace(), pipeline.WorkflowID(model), runID)
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
