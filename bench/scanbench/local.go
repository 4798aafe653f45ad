package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// localPrefix is where the window's keys live in the bucket (dataset.PartitionPrefix of the
// dataset "bench"); under the local directory the same files sit at their key without it
// (dt=<date>/part-0000.parquet).
const localPrefix = "datasets/bench/"

// localWindow is an in-memory bucket holding the window's files from dir (none when the
// window is about to be generated).
func localWindow(ctx context.Context, dir string, generating bool) (objstore.Bucket, error) {
	b := objstore.NewMem()
	if generating {
		return b, os.MkdirAll(dir, 0o755)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		_, err = b.Put(ctx, localPrefix+filepath.ToSlash(rel), data, objstore.PutOptions{})
		return err
	})
	return b, err
}

// writeLocal writes a window file under dir at its key without the dataset's prefix.
func writeLocal(dir, key string, data []byte) error {
	path := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(key, localPrefix)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// inspectWindow times the one pass (the Inspect activity: the contract on every row with
// quarantine, distinct-count sketches, the reference profile and the gbdt bins) over the
// window; with parts > 1, as that many partitions of whole files run side by side (what a
// worker at --concurrency parts does) and merged.
func inspectWindow(ctx context.Context, b objstore.Bucket, start time.Time, days, parts int) {
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		panic(err)
	}
	sp.Dataset.Name = "bench"
	data := &activities.Data{Store: b, Registry: registry.New(b)}
	from, to := start.Format(dataset.DateLayout), start.AddDate(0, 0, days-1).Format(dataset.DateLayout)
	var snap pipeline.SnapshotResult
	must(execute(data, data.Snapshot, pipeline.SnapshotInput{Model: "bench", RunID: "inspect", Dataset: "bench", From: from, To: to}, &snap))
	step := pipeline.StepInput{Model: "bench", RunID: "inspect", Spec: sp, SnapshotKey: snap.Key}
	t0 := time.Now()
	var res pipeline.InspectResult
	how := "Inspect"
	if parts <= 1 {
		must(execute(data, data.Inspect, step, &res))
	} else {
		how = fmt.Sprintf("%d partitions side by side, merged", parts)
		summaries := make([]pipeline.PartitionResult, parts)
		var wg sync.WaitGroup
		for p := range parts {
			from, to := p*snap.Files/parts, (p+1)*snap.Files/parts
			wg.Go(func() {
				must(execute(data, data.InspectPartition, pipeline.PartitionInput{StepInput: step, Partition: p, FromFile: from, ToFile: to}, &summaries[p]))
			})
		}
		wg.Wait()
		must(execute(data, data.MergePartitions, pipeline.MergeInput{StepInput: step, Partitions: summaries}, &res))
	}
	el := time.Since(t0).Seconds()
	fmt.Printf("driftline one pass (%s): %d files, %.0f MB of Parquet, %d rows (%d quarantined) in %.2f s: %.1f MB/s, %.2fM rows/s; peak RSS %s\n",
		how, snap.Files, float64(snap.Bytes)/(1<<20), res.Validation.RowsRead, res.Validation.RowsQuarantined, el, float64(snap.Bytes)/(1<<20)/el,
		float64(res.Validation.RowsRead)/el/1e6, benchutil.PeakRSS())
	fmt.Printf("DRIFTLINE_SECONDS=%.3f\n", el)
}

// execute runs one of data's activities in its own test environment (one a goroutine) and
// decodes its result into out.
func execute(data *activities.Data, fn, in, out any) error {
	var suite testsuite.WorkflowTestSuite
	te := suite.NewTestActivityEnvironment()
	te.RegisterActivity(data)
	v, err := te.ExecuteActivity(fn, in)
	if err != nil {
		return err
	}
	return v.Get(out)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// writeSQL writes DuckDB's queries of the demo contract's checks over dir's files: per column
// the rows that break it (null where not nullable, NaN or infinite, below min, above max, not
// allowed) and its approximate distinct count, the rows that break any check, and the
// duplicates of the unique key within a date.
func writeSQL(path, dir string) error {
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		return err
	}
	src := fmt.Sprintf("read_parquet('%s/*/*.parquet')", dir)
	var sel, bad []string
	for _, col := range sp.Contract.Columns {
		conds := columnChecks(col)
		if len(conds) > 0 {
			c := "(" + strings.Join(conds, " OR ") + ")"
			bad = append(bad, c)
			sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s) AS %s_breaches", c, col.Name))
		}
		sel = append(sel, fmt.Sprintf("approx_count_distinct(%s) AS %s_distinct", col.Name, col.Name))
	}
	sel = append(sel, "count(*) AS rows", fmt.Sprintf("count(*) FILTER (WHERE %s) AS bad_rows", strings.Join(bad, " OR ")))
	keys := strings.Join(append([]string{"date"}, sp.Contract.UniqueKey...), ", ")
	q := fmt.Sprintf("SELECT %s FROM %s;\nSELECT coalesce(sum(n - 1), 0) AS duplicates FROM (SELECT count(*) AS n FROM %s GROUP BY %s HAVING count(*) > 1);\n",
		strings.Join(sel, ",\n  "), src, src, keys)
	return os.WriteFile(path, []byte(q), 0o644)
}

// columnChecks are the SQL conditions under which a value of col breaks the contract.
func columnChecks(col contract.Column) []string {
	var out []string
	if !col.Nullable {
		out = append(out, col.Name+" IS NULL")
	}
	if col.Type == contract.TypeDouble {
		out = append(out, "isnan("+col.Name+")", "isinf("+col.Name+")")
	}
	if col.Min != nil {
		out = append(out, fmt.Sprintf("%s < %v", col.Name, *col.Min))
	}
	if col.Max != nil {
		out = append(out, fmt.Sprintf("%s > %v", col.Name, *col.Max))
	}
	if len(col.Allowed) > 0 {
		quoted := make([]string, len(col.Allowed))
		for i, a := range col.Allowed {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", "''") + "'"
		}
		out = append(out, fmt.Sprintf("CAST(%s AS VARCHAR) NOT IN (%s)", col.Name, strings.Join(quoted, ", ")))
	}
	return out
}
