package dataset

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
)

// mergeContract has a numeric, a categorical and a nullable integer column.
var mergeContract = contract.Contract{MaxBadRowShare: 0.2, Columns: []contract.Column{
	{Name: "price", Type: contract.TypeDouble, Role: contract.RoleFeature},
	{Name: "region", Type: contract.TypeString, Role: contract.RoleFeature},
	{Name: "units", Type: contract.TypeInt, Role: contract.RoleTarget, Nullable: true},
}}

// randomFile is a file's row groups with random values and rejected rows (in scan order:
// by row, then column).
func randomFile(rng *rand.Rand, idx int) []*Batch {
	file := fmt.Sprintf("datasets/d/dt=2026-10-%02d/part-0.parquet", idx+1)
	kinds := []contract.Reason{contract.ReasonNull, contract.ReasonNaN, contract.ReasonBelowMin, contract.ReasonNotAllowed, contract.ReasonDuplicateKey}
	var out []*Batch
	var first int64
	for g := range 1 + rng.IntN(3) {
		n := rng.IntN(40)
		b := &Batch{File: file, FileIndex: idx, RowGroup: g, FirstRow: first, Rows: n, Cols: map[string]*ColumnData{}}
		for _, c := range mergeContract.Columns {
			d := &ColumnData{Num: make([]float64, n), Str: make([]string, n), Null: make([]bool, n)}
			for r := range n {
				d.Num[r] = float64(rng.IntN(50))
				d.Str[r] = []string{"north", "south", "east", "west"}[rng.IntN(4)]
				d.Null[r] = c.Nullable && rng.IntN(10) == 0
			}
			b.Cols[c.Name] = d
		}
		for r := range n {
			for _, c := range mergeContract.Columns {
				if rng.IntN(12) == 0 {
					k := kinds[rng.IntN(len(kinds))]
					b.Issues = append(b.Issues, RowIssue{File: file, Row: first + int64(r), Column: c.Name, Kind: k, Reason: string(k)})
				}
			}
		}
		first += int64(n)
		out = append(out, b)
	}
	return out
}

// The validations of a window's partitions (any sets of whole files), merged in any order,
// report exactly what one pass over the window reports: every count, the distinct estimates
// (the sketches merge register by register), the files and the first examples in the scan's
// order, the decision.
func TestMergedValidationsEqualOnePass(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		files := make([][]*Batch, 1+rng.IntN(8))
		one := NewValidation("s3://b/snap.json", mergeContract)
		for i := range files {
			files[i] = randomFile(rng, i)
			for _, b := range files[i] {
				one.Add(b)
			}
		}
		k := 1 + rng.IntN(len(files))
		parts := make([]*Validation, k)
		for p := range parts {
			parts[p] = NewValidation("s3://b/snap.json", mergeContract)
		}
		for _, f := range files { // a file goes whole to a random partition, read in order there
			p := parts[rng.IntN(k)]
			for _, b := range f {
				p.Add(b)
			}
		}
		order := rng.Perm(k)
		merged := parts[order[0]]
		for _, p := range order[1:] {
			require.NoError(t, merged.Merge(parts[p]))
		}
		want, wantErr := one.Report("s3://b/quarantine/")
		got, gotErr := merged.Report("s3://b/quarantine/")
		require.Equal(t, want, got, "trial %d: %d files in %d partitions merged in order %v", trial, len(files), k, order)
		require.Equal(t, wantErr, gotErr, "trial %d", trial)
	}
}

// A file's row groups validated in two partitions (pieces of a split file) merge into the
// report of one pass over the file; the same index naming two files, or a validation of
// another contract, is refused.
func TestMergeOfPiecesAndRefusals(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var f []*Batch
	for len(f) < 2 {
		f = randomFile(rng, 3)
	}
	one, a, b := NewValidation("s", mergeContract), NewValidation("s", mergeContract), NewValidation("s", mergeContract)
	for _, bt := range f {
		one.Add(bt)
	}
	b.Add(f[0])
	for _, bt := range f[1:] {
		a.Add(bt)
	}
	require.NoError(t, a.Merge(b))
	want, wantErr := one.Report("q")
	rep, gotErr := a.Report("q")
	require.Equal(t, want, rep)
	require.Equal(t, wantErr, gotErr)

	renamed := NewValidation("s", mergeContract)
	g := *f[0]
	g.File = "datasets/d/other.parquet"
	renamed.Add(&g)
	require.ErrorContains(t, a.Merge(renamed), "file 3 is datasets/d/dt=2026-10-04/part-0.parquet and datasets/d/other.parquet")
	other := mergeContract
	other.Columns = append([]contract.Column(nil), mergeContract.Columns[:2]...)
	require.ErrorContains(t, a.Merge(NewValidation("s", other)), "3 columns and 2")
}
