// Command scanbench measures the validate step's Parquet scan over S3: -gen writes a window of
// the retail dataset (row groups of -group rows) to a bucket, -scan reads it back through
// ranged GETs with the demo contract and reports decoded MB/s and the process's peak RSS.
// bench/scan.sh runs both against a MinIO it starts. With -local DIR the window lives in local
// files instead (written there by -gen, held in memory for the scan): -inspect times the one
// pass over it (the Inspect activity) and -sql writes DuckDB's SQL of the same contract's
// checks over the same files (bench/duckdb.sh).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/parquet-go/parquet-go"

	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9000", "S3 endpoint")
	bucket := flag.String("bucket", "bench", "bucket")
	gen := flag.Bool("gen", false, "write the window")
	scan := flag.Bool("scan", false, "scan the window")
	validate := flag.Bool("validate", false, "run the real Validate activity over the window (contract, quarantine files, report, distinct-count sketches)")
	mb := flag.Int("mb", 1024, "approximate window size in MB (gen)")
	group := flag.Int("group", 131072, "rows per row group (gen)")
	days := flag.Int("days", 30, "partitions (gen)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the scan (or of the one pass) here")
	local := flag.String("local", "", "the window's local directory: -gen writes it there, the other modes read it into memory")
	parts := flag.Int("parts", 1, "inspect: read the window as this many partitions side by side, then merge them")
	inspect := flag.Bool("inspect", false, "run the one pass (the Inspect activity: validation, profile, bins) over the window")
	sqlFile := flag.String("sql", "", "write DuckDB's SQL of the demo contract's checks over -local's files here")
	flag.Parse()
	ctx := context.Background()
	var b objstore.Bucket
	var err error
	if *local != "" {
		b, err = localWindow(ctx, *local, *gen)
	} else {
		b, err = s3store.New(ctx, s3store.Config{Endpoint: *endpoint, Bucket: *bucket, AccessKey: os.Getenv("SCANBENCH_ACCESS_KEY"), SecretKey: os.Getenv("SCANBENCH_SECRET_KEY")})
	}
	if err != nil {
		panic(err)
	}
	cfg := dataset.DefaultRetail()
	start := cfg.Start
	if *gen {
		generate(ctx, b, cfg, *mb, *group, *days, *local)
	}
	if *sqlFile != "" {
		if err := writeSQL(*sqlFile, *local); err != nil {
			panic(err)
		}
	}
	if *inspect {
		stop, err := benchutil.CPUProfile(*cpuprofile)
		if err != nil {
			panic(err)
		}
		inspectWindow(ctx, b, start, *days, *parts)
		stop()
	}
	if *scan {
		scanWindow(ctx, b, start, *days, *cpuprofile)
	}
	if *validate {
		validateWindow(ctx, b, start, *days)
	}
}

// generate writes days partitions of about mb MB in all, row groups of group rows.
func generate(ctx context.Context, b objstore.Bucket, cfg dataset.RetailConfig, mb, group, days int, local string) {
	start := cfg.Start
	if s3, ok := b.(*s3store.S3); ok {
		if err := s3.EnsureBucket(ctx); err != nil {
			panic(err)
		}
	}
	// About 71 bytes a row once encoded: size the stores to reach the target.
	cfg.Items = 500
	cfg.Stores = max(1, mb<<20/71/cfg.Items/days)
	var total int64
	for d := range days {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[dataset.RetailRow](&buf, parquet.MaxRowsPerRowGroup(int64(group)))
		if _, err := w.Write(cfg.RetailDay(d)); err != nil {
			panic(err)
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		key := dataset.PartitionPrefix("bench", start.AddDate(0, 0, d)) + "part-0000.parquet"
		if _, err := b.Put(ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
			panic(err)
		}
		if local != "" {
			if err := writeLocal(local, key, buf.Bytes()); err != nil {
				panic(err)
			}
		}
		total += int64(buf.Len())
	}
	fmt.Printf("wrote %d partitions, %.0f MB of Parquet (%d stores x %d items a day, row groups of %d rows)\n",
		days, float64(total)/(1<<20), cfg.Stores, cfg.Items, group)
}

// scanWindow times dataset.Scan over the window (with a CPU profile when cpuprofile names a file).
func scanWindow(ctx context.Context, b objstore.Bucket, start time.Time, days int, cpuprofile string) {
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		panic(err)
	}
	s, err := dataset.TakeSnapshot(ctx, b, "bench", "bench", start, start.AddDate(0, 0, days-1))
	if err != nil {
		panic(err)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			panic(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	var rows, accepted, decoded int64
	err = dataset.Scan(ctx, b, s, sp.Contract, func(bt *dataset.Batch) error {
		rows += int64(bt.Rows)
		for _, ok := range bt.Accepted {
			if ok {
				accepted++
			}
		}
		for _, c := range bt.Cols {
			decoded += int64(len(c.Num)) * 8
			for _, str := range c.Str {
				decoded += int64(len(str))
			}
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	el := time.Since(t0).Seconds()
	fmt.Printf("scanned %d files, %.0f MB of Parquet, %d rows (%d accepted) in %.1f s: %.1f MB/s of Parquet, %.1f MB/s of decoded column data (%.0f MB), %.2fM rows/s; peak RSS %s\n",
		len(s.Files), float64(s.Bytes)/(1<<20), rows, accepted, el, float64(s.Bytes)/(1<<20)/el, float64(decoded)/(1<<20)/el,
		float64(decoded)/(1<<20), float64(rows)/el/1e6, benchutil.PeakRSS())
}

// validateWindow times the real Validate activity over the window.
func validateWindow(ctx context.Context, b objstore.Bucket, start time.Time, days int) {
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		panic(err)
	}
	sp.Dataset.Name = "bench"
	var suite testsuite.WorkflowTestSuite
	te := suite.NewTestActivityEnvironment() // the activity heartbeats: it needs an activity context
	data := &activities.Data{Store: b}
	te.RegisterActivity(data)
	from, to := start.Format(dataset.DateLayout), start.AddDate(0, 0, days-1).Format(dataset.DateLayout)
	v, err := te.ExecuteActivity(data.Snapshot, pipeline.SnapshotInput{Model: "bench", RunID: "validate", Dataset: "bench", From: from, To: to})
	if err != nil {
		panic(err)
	}
	var snap pipeline.SnapshotResult
	if err := v.Get(&snap); err != nil {
		panic(err)
	}
	t0 := time.Now()
	v, err = te.ExecuteActivity(data.Validate, pipeline.StepInput{Model: "bench", RunID: "validate", Spec: sp, SnapshotKey: snap.Key})
	if err != nil {
		panic(err)
	}
	var res pipeline.ValidateResult
	if err := v.Get(&res); err != nil {
		panic(err)
	}
	el := time.Since(t0).Seconds()
	fmt.Printf("Validate activity: %d files, %.0f MB of Parquet, %d rows (%d quarantined, report and quarantine files written) in %.1f s: %.1f MB/s of Parquet, %.2fM rows/s; peak RSS %s\n",
		snap.Files, float64(snap.Bytes)/(1<<20), res.RowsRead, res.RowsQuarantined, el, float64(snap.Bytes)/(1<<20)/el, float64(res.RowsRead)/el/1e6, benchutil.PeakRSS())
}
