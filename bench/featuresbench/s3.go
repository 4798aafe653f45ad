package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// The modes below read and write a real S3 (MinIO, started by bench/features.sh): the data
// lives outside the process, so its peak RSS is the step's own. Each step runs in its own
// process (-mode ...-data first).

func bucket(ctx context.Context) (objstore.Bucket, error) {
	cfg := s3store.Config{Endpoint: os.Getenv("BENCH_S3_ENDPOINT"), AccessKey: os.Getenv("BENCH_S3_USER"), SecretKey: os.Getenv("BENCH_S3_PASSWORD"),
		Bucket: "bench", Region: "us-east-1"}
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("BENCH_S3_ENDPOINT is not set (bench/features.sh starts MinIO)")
	}
	s, err := s3store.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, s.EnsureBucket(ctx)
}

const retrieveDays = 100

// retrieveRepo: one view of the source bench_src (an entity key, the day, the time the row was
// written, a value), its value joined as of each entity row's time within 30 days.
func retrieveRepo() (features.Repo, map[string]contract.Contract) {
	v := features.View{Name: "v", Entity: "e", Lookback: spec.Duration{Duration: 30 * 24 * time.Hour},
		Source:   features.Source{Dataset: "bench_src", EventTime: "date", CreatedTime: "created"},
		Features: []features.Feature{{Name: "value", Op: features.OpValue, Column: "v"}}}
	c := contract.Contract{MaxBadRowShare: 0.01, Columns: []contract.Column{
		{Name: "key", Type: contract.TypeInt, Role: contract.RoleEntityKey},
		{Name: "date", Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: "created", Type: contract.TypeInt, Role: contract.RoleOther},
		{Name: "v", Type: contract.TypeDouble, Role: contract.RoleFeature}}}
	return features.Repo{Entities: []features.Entity{{Name: "e", Keys: []string{"key"}}}, Views: []features.View{v},
		Services: []features.Service{{Name: "s", Features: []string{"v:value"}}}}, map[string]contract.Contract{"bench_src": c}
}

type srcRow struct {
	Key     int64   `parquet:"key"`
	Date    string  `parquet:"date"`
	Created int64   `parquet:"created"` // Unix seconds
	V       float64 `parquet:"v"`
}

type entRow struct {
	Key int64   `parquet:"key"`
	At  int64   `parquet:"at"` // Unix seconds
	Y   float64 `parquet:"label"`
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// retrieveData writes n source rows over 100 daily partitions (keys m/4; 10% written up to 30
// days late) and an entity file of m rows (times of day within the 100 days).
func retrieveData(n, m int) error {
	ctx := context.Background()
	b, err := bucket(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	keys := m / 4
	perDay := n / retrieveDays
	for d := range retrieveDays {
		day := start.AddDate(0, 0, d)
		rows := make([]srcRow, perDay)
		for i := range rows {
			created := day.Unix()
			if rng.IntN(10) == 0 {
				created += int64(rng.IntN(30)) * 86400
			}
			rows[i] = srcRow{Key: int64(rng.IntN(keys)), Date: day.Format(dataset.DateLayout), Created: created, V: float64(d*perDay + i)}
		}
		data, err := dataset.EncodeParquet(rows)
		if err != nil {
			return err
		}
		if _, err := b.Put(ctx, dataset.PartitionPrefix("bench_src", day)+"part-0.parquet", data, objstore.PutOptions{}); err != nil {
			return err
		}
	}
	ents := make([]entRow, m)
	for i := range ents {
		ents[i] = entRow{Key: int64(rng.IntN(keys)), At: start.Unix() + int64(rng.IntN(retrieveDays*24))*3600, Y: float64(i)}
	}
	data, err := dataset.EncodeParquet(ents)
	if err != nil {
		return err
	}
	_, err = b.Put(ctx, "entities/bench.parquet", data, objstore.PutOptions{})
	fmt.Printf("wrote %d source rows in %d daily partitions and an entity file of %d rows (%d keys) to %s\n", n, retrieveDays, m, keys, os.Getenv("BENCH_S3_ENDPOINT"))
	return err
}

// retrieve builds the training set of the entity file from S3 to S3 (features.RetrieveFile:
// the sources pinned, partitioned to local files, joined a partition at a time, streamed
// to Parquet).
func retrieve() error {
	ctx := context.Background()
	b, err := bucket(ctx)
	if err != nil {
		return err
	}
	r, contracts := retrieveRepo()
	tmp, err := os.MkdirTemp("", "featuresbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pin := func(ctx context.Context, ds string, from, to time.Time) (dataset.Snapshot, error) {
		return dataset.TakeSnapshot(ctx, b, ds, "bench", from, to)
	}
	t0 := time.Now()
	out, err := features.RetrieveFile(ctx, b, r, "s", contracts, pin, "entities/bench.parquet", "at", "out/bench/", tmp)
	if err != nil {
		return err
	}
	el := time.Since(t0)
	f := out.Snapshot.Files[0]
	fmt.Printf("retrieval from S3 to S3: %d entity rows x %d source rows in %d partitions: %.2f s, %.2fM entity rows/s, %d without a value; wrote %s (%.1f MB); peak RSS %s\n",
		out.Snapshot.Rows, sourceRows(ctx, b), out.Partitions, el.Seconds(), float64(out.Snapshot.Rows)/el.Seconds()/1e6, out.Missing[0], f.Key, float64(f.Size)/1e6, benchutil.PeakRSS())
	return nil
}

func sourceRows(ctx context.Context, b objstore.Bucket) int64 {
	s, err := dataset.TakeSnapshot(ctx, b, "bench_src", "count", start, start.AddDate(0, 0, retrieveDays-1))
	if err != nil {
		return -1
	}
	return s.Rows
}

// chunksData writes the demo's data at 50 stores x 50 items for 121 days and applies the
// example definitions.
func chunksData() error {
	ctx := context.Background()
	b, err := bucket(ctx)
	if err != nil {
		return err
	}
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = 50, 50, 121
	if _, _, err := dataset.WriteRetail(ctx, b, "retail_demand", cfg); err != nil {
		return err
	}
	raw, err := os.ReadFile("examples/features.yaml")
	if err != nil {
		return err
	}
	if _, _, err := features.Apply(ctx, b, "retail", raw, "", "bench", "bench", "group:retail"); err != nil {
		return err
	}
	fmt.Printf("wrote the demo's data, 2,500 store-items x 121 days, to %s\n", os.Getenv("BENCH_S3_ENDPOINT"))
	return nil
}

// chunksS3 materializes the demo's view one day at a time for the last `days` days of the data
// (as the workflow's chunks do), from S3: the process's peak RSS is the chunks' own.
func chunksS3(days int) error {
	ctx := context.Background()
	b, err := bucket(ctx)
	if err != nil {
		return err
	}
	specYAML, err := os.ReadFile("examples/demand.yaml")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "featuresbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o, err := features.OpenBolt(filepath.Join(dir, "c.db"))
	if err != nil {
		return err
	}
	defer o.Close()
	act := &activities.Features{Store: b, Online: o}
	end := dataset.DefaultRetail().Start.AddDate(0, 0, 121)
	t0 := time.Now()
	keys := 0
	var ms runtime.MemStats
	for d := days; d > 0; d-- {
		res, err := act.MaterializeChunk(ctx, pipeline.MaterializeChunkInput{Repo: "retail", View: "demand_history", SpecYAML: string(specYAML),
			End: end.AddDate(0, 0, 1-d)})
		if err != nil {
			return err
		}
		keys += res.Keys
	}
	el := time.Since(t0)
	runtime.ReadMemStats(&ms)
	fmt.Printf("materialize %d daily chunks of 2,500 store-items from S3: %.2f s, %d key writes, allocated %.1f MB a chunk; peak RSS %s\n",
		days, el.Seconds(), keys, float64(ms.TotalAlloc)/1e6/float64(days), benchutil.PeakRSS())
	return nil
}
