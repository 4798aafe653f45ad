// Command fanoutbench measures the one pass read as partitions over 1, 2 and 4 pipeline
// worker processes (each GOMAXPROCS=1, so the curve shows distribution, not threads) on the
// same window: a generated retail window in MinIO with a production model to drift against
// (registered first, not measured), then for each worker count the run's Partitions
// workflow (one partition a day file, every partition's pass and their combination) started
// on Temporal and timed until its result. bench/fanout.sh starts MinIO and the Temporal dev
// server and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9000", "S3 endpoint")
	temporal := flag.String("temporal", "127.0.0.1:7233", "Temporal frontend")
	bin := flag.String("driftline", "bin/driftline", "the driftline binary the workers run")
	stores := flag.Int("stores", 200, "stores in the generated window")
	items := flag.Int("items", 500, "items per store")
	days := flag.Int("days", 28, "days in the window (a partition a day)")
	workers := flag.String("workers", "1,2,4", "worker process counts to measure")
	many := flag.Int("partitions", 0, "instead: a real run over this many day files, one partition each, on 2 workers; report its histories")
	holdout := flag.Int("holdout", 7, "with -partitions: the holdout's days, so its evaluation's partitions")
	flag.Parse()
	var err error
	if *many > 0 {
		err = runMany(*endpoint, *temporal, *bin, *many, *holdout)
	} else {
		err = run(*endpoint, *temporal, *bin, *stores, *items, *days, *workers)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanoutbench:", err)
		os.Exit(1)
	}
}

func run(endpoint, temporal, bin string, stores, items, days int, workers string) error {
	ctx := context.Background()
	s3cfg, b, err := bucket(ctx, endpoint, "fanoutbench")
	if err != nil {
		return err
	}
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		return err
	}
	sp.Dataset.WindowDays = days
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = stores, items, days
	if _, _, err := dataset.WriteRetail(ctx, b, sp.Dataset.Name, cfg); err != nil {
		return err
	}
	from, to := cfg.Start.Format(dataset.DateLayout), cfg.Start.AddDate(0, 0, days-1).Format(dataset.DateLayout)
	snap, err := benchutil.Production(ctx, b, sp, from, to)
	if err != nil {
		return err
	}
	fmt.Printf("window: %d stores x %d items x %d days = %d rows, %d files, %.0f MB of Parquet; production v1 registered to drift against\n",
		stores, items, days, snap.Rows, snap.Files, float64(snap.Bytes)/(1<<20))
	c, err := client.Dial(client.Options{HostPort: temporal})
	if err != nil {
		return err
	}
	defer c.Close()
	step := pipeline.StepInput{Model: sp.Model, RunID: "fanout", Spec: sp, SnapshotKey: snap.Key}
	var base float64
	for _, w := range strings.Split(workers, ",") {
		n, err := strconv.Atoi(w)
		if err != nil {
			return fmt.Errorf("-workers %q: %w", workers, err)
		}
		secs, err := measure(ctx, c, bin, endpoint, temporal, s3cfg, step, snap, n)
		if err != nil {
			return err
		}
		if base == 0 {
			base = secs
		}
		fmt.Printf("%d worker(s), GOMAXPROCS=1 each: %d partitions in %.1f s, %.1f MB/s of Parquet, %.2fx one worker\n",
			n, snap.Files, secs, float64(snap.Bytes)/(1<<20)/secs, base/secs)
	}
	return nil
}

// measure starts n worker processes, times the Partitions workflow over every day file, and
// stops them.
func measure(ctx context.Context, c client.Client, bin, endpoint, temporal string, s3cfg s3store.Config, step pipeline.StepInput, snap pipeline.SnapshotResult, n int) (float64, error) {
	stop, err := startWorkers(bin, endpoint, temporal, s3cfg, n, "1")
	if err != nil {
		return 0, err
	}
	defer stop()
	var parts []pipeline.PartitionInput
	for f := range snap.Files {
		parts = append(parts, pipeline.PartitionInput{StepInput: step, Partition: f, FromFile: f, ToFile: f + 1})
	}
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("fanoutbench-%d-%d", n, t0.UnixNano()), TaskQueue: pipeline.TaskQueue},
		pipeline.PartitionsWorkflow, pipeline.Batch(parts))
	if err != nil {
		return 0, err
	}
	var res pipeline.PartitionResult
	if err := run.Get(ctx, &res); err != nil {
		return 0, err
	}
	took := time.Since(t0).Seconds()
	spans, err := activitySpans(ctx, c, run.GetID(), run.GetRunID())
	if err != nil {
		return 0, err
	}
	fmt.Printf("  %s; combined summary %.1f MB\n", spans, float64(res.Bytes)/(1<<20))
	return took, nil
}

// activitySpans says, per activity type of the workflow, how many ran, their summed time and
// the span from the first start to the last end.
func activitySpans(ctx context.Context, c client.Client, id, runID string) (string, error) {
	type span struct {
		n          int
		sum        time.Duration
		first, end time.Time
	}
	byType, started, scheduled := map[string]*span{}, map[int64]time.Time{}, map[int64]string{}
	var order []string
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", err
		}
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			started[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = ev.GetEventTime().AsTime()
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			a := ev.GetActivityTaskCompletedEventAttributes()
			name, at, end := scheduled[a.GetScheduledEventId()], started[a.GetScheduledEventId()], ev.GetEventTime().AsTime()
			sp := byType[name]
			if sp == nil {
				sp = &span{first: at}
				byType[name] = sp
				order = append(order, name)
			}
			sp.n, sp.sum = sp.n+1, sp.sum+end.Sub(at)
			if at.Before(sp.first) {
				sp.first = at
			}
			if end.After(sp.end) {
				sp.end = end
			}
		}
	}
	var parts []string
	for _, name := range order {
		sp := byType[name]
		parts = append(parts, fmt.Sprintf("%d %s: %.1f s in all, %.1f s from first start to last end", sp.n, name, sp.sum.Seconds(), sp.end.Sub(sp.first).Seconds()))
	}
	return strings.Join(parts, "; "), nil
}

// runMany is the -partitions mode: its own bucket, the run, its histories.
func runMany(endpoint, temporal, bin string, files, holdout int) error {
	ctx := context.Background()
	s3cfg, b, err := bucket(ctx, endpoint, "fanoutmany")
	if err != nil {
		return err
	}
	c, err := client.Dial(client.Options{HostPort: temporal})
	if err != nil {
		return err
	}
	defer c.Close()
	return manyPartitions(ctx, c, b, bin, endpoint, temporal, s3cfg, files, holdout, 2)
}

// bucket opens (and makes) the named bucket on the benchmark's MinIO.
func bucket(ctx context.Context, endpoint, name string) (s3store.Config, *s3store.S3, error) {
	cfg := s3store.Config{Endpoint: endpoint, Bucket: name, Region: "us-east-1",
		AccessKey: os.Getenv("FANOUTBENCH_ACCESS_KEY"), SecretKey: os.Getenv("FANOUTBENCH_SECRET_KEY")}
	b, err := s3store.New(ctx, cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, b, b.EnsureBucket(ctx)
}
