package devcli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/objstore"
)

// produceRetail streams days [from, from+days) of the demo's data into a topic as JSON
// records keyed by store-item; it returns how many.
func produceRetail(ctx context.Context, brokers []string, topic string, cfg dataset.RetailConfig, from, days int) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for d := from; d < from+days; d++ {
		var recs []*kgo.Record
		for _, r := range cfg.RetailDay(d) {
			value, err := json.Marshal(retailJSON(r))
			if err != nil {
				return n, err
			}
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("%d|%d", r.StoreID, r.ItemID)), Value: value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return n, err
		}
		n += len(recs)
	}
	return n, nil
}

// demoStream is how the demo's holiday weeks arrive: days [from, from+days) are produced to
// the topic retail.sales on make up's broker, and an ingest worker (`driftline ingest`, its own
// process, a fresh consumer group) writes them into the dataset's day partitions, exactly once,
// with the contract checked at the door. It waits until the manifests account for every record.
func demoStream(ctx context.Context, b objstore.Bucket, specPath string, cfg dataset.RetailConfig, from, days int) error {
	brokers := strings.Split(cli.Env("DRIFTLINE_KAFKA", "127.0.0.1:9092"), ",")
	ds := "retail_demand"
	if err := cleanStream(ctx, b, ds, cfg, from, days); err != nil {
		return err
	}
	abs, err := filepath.Abs(specPath)
	if err != nil {
		return err
	}
	spec := filepath.Join(os.TempDir(), fmt.Sprintf("driftline-demo-ingest-%d.yaml", os.Getpid()))
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: driftline.dev/v1
kind: IngestSpec
dataset: %s
model_spec: %s
brokers: [%s]
topics: [retail.sales]
group: demo-%d
max_rows: 100000
flush_idle: 2s
session_timeout: 3s
`, ds, abs, strings.Join(brokers, ", "), time.Now().UnixNano())), 0o600); err != nil {
		return err
	}
	defer os.Remove(spec)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(cli.Env("DRIFTLINE_DATA", ".data"), "ingest.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "ingest", "--spec", spec, "--metrics", "127.0.0.1:9466")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	n, err := produceRetail(ctx, brokers, "retail.sales", cfg, from, days)
	if err != nil {
		return fmt.Errorf("produce to %s: %w", strings.Join(brokers, ","), err)
	}
	first, last := cfg.Start.AddDate(0, 0, from).Format(time.DateOnly), cfg.Start.AddDate(0, 0, from+days-1).Format(time.DateOnly)
	fmt.Printf("  produced %d records (%s..%s, one per store-item and day) to the topic retail.sales (4 partitions) on %s\n", n, first, last, strings.Join(brokers, ","))
	return waitIngested(ctx, b, ds, n, first, last, logPath)
}

// cleanStream deletes what an earlier demo streamed: the ingest state and the streamed days
// (the broker is restarted empty by make up), so a demo run starts from a clean stream.
func cleanStream(ctx context.Context, b objstore.Bucket, ds string, cfg dataset.RetailConfig, from, days int) error {
	prefixes := []string{"ingest/" + ds + "/", "late/" + ds + "/", "quarantine/" + ds + "/ingest/"}
	for d := from; d < from+days; d++ {
		prefixes = append(prefixes, dataset.PartitionPrefix(ds, cfg.Start.AddDate(0, 0, d)))
	}
	for _, p := range prefixes {
		objs, err := b.List(ctx, p)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := b.Delete(ctx, o.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitIngested waits (up to 2 minutes) until the dataset's ingest manifests account for all n
// records produced (accepted or quarantined), and says what the worker wrote.
func waitIngested(ctx context.Context, b objstore.Bucket, ds string, n int, first, last, logPath string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ms, err := ingest.Manifests(ctx, b, ds)
		if err != nil {
			return err
		}
		accepted, quarantined, files := 0, 0, len(ms)
		for _, m := range ms {
			accepted, quarantined = accepted+m.Accepted, quarantined+m.Quarantined
		}
		if accepted+quarantined >= n {
			fmt.Printf("  the ingest worker (driftline ingest, log %s) wrote them into datasets/%s/dt=%s..%s: %d files, %d records accepted, %d quarantined at the door with their offsets (quarantine/%s/ingest/), exactly once (a manifest per offset range, before its file)\n",
				logPath, ds, first, last, files, accepted, quarantined, ds)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the ingest worker wrote %d of %d records within 2 minutes (see %s)", accepted+quarantined, n, logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
