package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/starter"
)

// cmdIngest runs an ingest worker: Kafka topics into the dataset (docs/ingest.md).
func ingestCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ingest", Short: "run an ingest worker: Kafka topics into a dataset, exactly once", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	specPath := fs.String("spec", "examples/ingest.yaml", "ingest spec")
	metrics := fs.String("metrics", "127.0.0.1:9466", "Prometheus metrics address")
	brokers := fs.String("brokers", "", "override the spec's brokers (host:port,...)")
	instance := EnvFlag(fs, "instance-id", "DRIFTLINE_INGEST_INSTANCE_ID", "", "static group membership: a restart with the same ID takes over this worker's partitions at once (unique per worker, e.g. the pod name)")
	kafkaLog := fs.String("kafka-log", "warn", "the Kafka client's log: off, error, warn, info or debug")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		sp, err := ingest.LoadSpec(*specPath)
		if err != nil {
			return err
		}
		if *brokers != "" {
			sp.Brokers = strings.Split(*brokers, ",")
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		level := slog.LevelInfo
		if *kafkaLog == "debug" {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		kl, err := ingest.KafkaLogger(log, *kafkaLog)
		if err != nil {
			return err
		}
		w := &ingest.Worker{Spec: sp, Store: b, Metrics: ingest.NewMetrics(reg), Log: log, InstanceID: *instance}
		if kl != nil {
			w.ClientOpts = append(w.ClientOpts, kgo.WithLogger(kl))
		}
		if sp.Trigger.OnNewPartition {
			c, err := config.TemporalClient()
			if err != nil {
				return err
			}
			defer c.Close()
			w.OnClosed = starter.RunOnClosedDay(c, sp.Model, sp.Group, sp.Dataset)
			if sp.Trigger.Action == "monitor" {
				w.OnClosed = starter.MonitorOnClosedDay(c, sp.Model.Model, sp.Group, sp.Dataset)
			}
		}
		srv := &http.Server{Addr: *metrics, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.Log.Error("metrics", "error", err)
			}
		}()
		defer srv.Close()
		fmt.Printf("ingest worker: %s (group %s) -> datasets/%s/; metrics on %s/metrics\n", strings.Join(sp.Topics, ","), sp.Group, sp.Dataset, *metrics)
		return w.Run(ctx)
	}
	return cmd
}
