package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/starter"
)

// cmdIngest runs an ingest worker: Kafka topics into the dataset (docs/ingest.md).
func cmdIngest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	specPath := fs.String("spec", "examples/ingest.yaml", "ingest spec")
	metrics := fs.String("metrics", "127.0.0.1:9466", "Prometheus metrics address")
	brokers := fs.String("brokers", "", "override the spec's brokers (host:port,...)")
	instance := fs.String("instance-id", os.Getenv("DRIFTLINE_INGEST_INSTANCE_ID"), "static group membership: a restart with the same ID takes over this worker's partitions at once (unique per worker, e.g. the pod name)")
	kafkaLog := fs.String("kafka-log", "warn", "the Kafka client's log: off, error, warn, info or debug")
	if err := parse(fs, args); err != nil {
		return err
	}
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

// cmdKafkaDev runs franz-go's kfake cluster as its own process: a Kafka-protocol broker for
// the tests and the demo (not for production: docker-compose.yml has a real one).
func cmdKafkaDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kafka-dev", flag.ContinueOnError)
	port := fs.Int("port", 9092, "port of the broker on 127.0.0.1")
	topics := fs.String("topics", "retail.sales:4", "topics to create, name:partitions,...")
	dataDir := fs.String("data-dir", "", "keep the log here across restarts (empty: in memory)")
	registry := fs.Int("registry-port", 0, "also serve a schema registry (franz-go's srfake, in memory) on this port of 127.0.0.1 (0: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *registry > 0 {
		srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", *registry), Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("--registry-port: %w", err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Printf("schema registry (srfake) on http://%s\n", srv.Addr)
	}
	opts := []kfake.Opt{kfake.Ports(*port), kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	for _, t := range strings.Split(*topics, ",") {
		name, n, ok := strings.Cut(t, ":")
		parts, err := strconv.Atoi(n)
		if !ok || err != nil || parts < 1 {
			return fmt.Errorf("--topics: %q is not name:partitions", t)
		}
		opts = append(opts, kfake.SeedTopics(int32(parts), name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("kafka-dev (kfake) on %s, topics %s\n", strings.Join(c.ListenAddrs(), ","), *topics)
	<-ctx.Done()
	return nil
}

// cmdProduce streams the demo's retail days as JSON records (key store-item) into a topic.
func cmdProduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers")
	topic := fs.String("topic", "retail.sales", "topic")
	from := fs.Int("from-day", 0, "first day of the demo data (0: 2026-09-01)")
	days := fs.Int("days", 1, "days to produce")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := dataset.DefaultRetail()
	n, err := produceRetail(ctx, strings.Split(*brokers, ","), *topic, cfg, *from, *days)
	if err != nil {
		return err
	}
	fmt.Printf("produced %d records (%d days from %s) to %s\n", n, *days, cfg.Start.AddDate(0, 0, *from).Format(time.DateOnly), *topic)
	return nil
}

// retailJSON is a demo row as a producer writes it (a missing temperature is null).
func retailJSON(r dataset.RetailRow) map[string]any {
	m := map[string]any{"date": r.Date, "store_id": r.StoreID, "item_id": r.ItemID, "region": r.Region, "price": r.Price,
		"promo": r.Promo, "weekday": r.Weekday, "item_popularity": r.ItemPopularity, "competitor_price": r.CompetitorPrice,
		"units_sold": r.UnitsSold, "temperature": nil}
	if r.Temperature == r.Temperature { // not NaN
		m["temperature"] = r.Temperature
	}
	return m
}
