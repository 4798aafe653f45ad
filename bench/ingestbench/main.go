// Command ingestbench measures the ingest worker (bench/ingest.sh): records/s from a Kafka
// broker (driftline kafka-dev) into Parquet on MinIO with the demand contract applied, and
// peak RSS, against the limit: a franz-go consumer of the same records that only decodes them.
// Each mode runs in its own process (the broker and MinIO are other processes).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
)

func main() {
	mode := flag.String("mode", "produce", "produce, ingest or decode")
	broker := flag.String("broker", "127.0.0.1:9092", "Kafka broker")
	topic := flag.String("topic", "bench", "topic")
	n := flag.Int("records", 1_000_000, "records")
	specPath := flag.String("spec", "", "ingest: the ingest spec")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	stop, err := benchutil.CPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
	switch *mode {
	case "produce":
		err = produce(*broker, *topic, *n)
	case "ingest":
		err = runIngest(*specPath, *broker, *topic, *n)
	case "decode":
		err = decode(*broker, *topic, *n)
	default:
		err = fmt.Errorf("mode %q", *mode)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

// record i of the demand contract: 10,000 store-items a day from 2026-06-01.
func record(i int) []byte {
	si := i % 10_000
	b, _ := json.Marshal(map[string]any{"date": time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/10_000).Format(time.DateOnly),
		"store_id": si/100 + 1, "item_id": si%100 + 1, "region": []string{"north", "south", "east", "west"}[si%4], "price": 10 + float64(si%50),
		"promo": si % 2, "weekday": (i / 10_000) % 7, "temperature": 15.5, "item_popularity": 1.0, "competitor_price": 11.0, "units_sold": float64(i % 40)})
	return b
}

func produce(broker, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := context.Background()
	t0 := time.Now()
	for start := 0; start < n; start += 10_000 {
		var recs []*kgo.Record
		for i := start; i < min(n, start+10_000); i++ {
			recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i % 10_000)), Value: record(i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
	fmt.Printf("produced %d records (%d bytes each) in %.1f s\n", n, len(record(0)), time.Since(t0).Seconds())
	return nil
}

func runIngest(specPath, broker, topic string, n int) error {
	sp, err := ingest.LoadSpec(specPath)
	if err != nil {
		return err
	}
	sp.Brokers, sp.Topics = []string{broker}, []string{topic}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := s3store.New(ctx, s3store.Config{Endpoint: os.Getenv("BENCH_S3_ENDPOINT"), AccessKey: os.Getenv("BENCH_S3_USER"),
		SecretKey: os.Getenv("BENCH_S3_PASSWORD"), Bucket: "bench", Region: "us-east-1"})
	if err != nil {
		return err
	}
	if err := b.EnsureBucket(ctx); err != nil {
		return err
	}
	m := ingest.NewMetrics(prometheus.NewRegistry())
	w := &ingest.Worker{Spec: sp, Store: b, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- w.Run(ctx) }()
	handled := func() int {
		return int(testutil.ToFloat64(m.Records.WithLabelValues(sp.Dataset, "accepted")) + testutil.ToFloat64(m.Records.WithLabelValues(sp.Dataset, "quarantined")))
	}
	for {
		// The manifests are read once every record has been handled (reading them costs).
		if handled() >= n && written(ctx, b, sp.Dataset) >= n {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("worker stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	el := time.Since(t0)
	cancel()
	<-done
	fmt.Printf("ingest worker: %d records from the broker into Parquet on MinIO (contract applied, manifests, commits): %.2f s, %.0f records/s; peak RSS %s\n",
		n, el.Seconds(), float64(n)/el.Seconds(), benchutil.PeakRSS())
	return nil
}

// written counts the records the manifests account for.
func written(ctx context.Context, b objstore.Bucket, ds string) int {
	ms, err := ingest.Manifests(ctx, b, ds)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range ms {
		n += m.Accepted + m.Quarantined
	}
	return n
}

// decode is the limit: consume the records and decode each JSON value, nothing else.
func decode(broker, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := context.Background()
	t0 := time.Now()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			var m map[string]any
			if json.Unmarshal(r.Value, &m) == nil {
				got++
			}
		})
	}
	el := time.Since(t0)
	fmt.Printf("franz-go consumer that only decodes: %d records: %.2f s, %.0f records/s; peak RSS %s\n", got, el.Seconds(), float64(got)/el.Seconds(), benchutil.PeakRSS())
	return nil
}
