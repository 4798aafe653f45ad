package duckdbtest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
)

// Column is a result column as DuckDB types it.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is a query's columns and rows (values as DuckDB's JSON form: numbers, strings, null).
type Result struct {
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Types maps each column to its DuckDB type.
func (r Result) Types() map[string]string {
	out := map[string]string{}
	for _, c := range r.Columns {
		out[c.Name] = c.Type
	}
	return out
}

// Get is row i's value of column name.
func (r Result) Get(i int, name string) any {
	for j, c := range r.Columns {
		if c.Name == name {
			return r.Rows[i][j]
		}
	}
	return nil
}

// Query runs one SQL statement in DuckDB.
func Query(t testing.TB, sql string) Result {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bench", "duckdb")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB is missing: run `make tools` (make test does it for you): %v", err)
	}
	out, err := exec.Command("node", filepath.Join(dir, "query.mjs"), sql).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("duckdb: %s: %v\n%s", sql, err, stderr)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("duckdb output: %v: %s", err, out)
	}
	return r
}

// Fetch copies the objects under prefix into dir (their keys' paths below it) and returns
// dir: DuckDB then reads them as local files.
func Fetch(t testing.TB, b objstore.Bucket, prefix, dir string) string {
	t.Helper()
	ctx := context.Background()
	objs, err := b.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("nothing under %s", b.URI(prefix))
	}
	for _, o := range objs {
		data, _, err := objstore.ReadAll(ctx, b, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(o.Key, prefix)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
