package agent

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// A sketch of 10,000 predictions of 100 features in 11 bins each stays under 8 KB, closes at
// 10,000 rows, counts each value in the bin the server's drift bins put it ((-inf, e0], ...),
// missing values apart, and ignores features the reference does not hold.
func TestASketchIsSmallAndCountsInTheReferenceBins(t *testing.T) {
	const features = 100
	ref := Reference{Version: 3}
	names := make([]string, features)
	for i := range features {
		names[i] = fmt.Sprintf("feature_%03d", i)
		edges := make([]float64, 10)
		for j := range edges {
			edges[j] = float64(j + 1)
		}
		ref.Features = append(ref.Features, ReferenceFeature{Name: names[i], Edges: edges})
	}
	s := NewSketcher(ref, append(names, "not_in_reference"))
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, features+1)
	for r := range SketchRows - 1 {
		for i := range x {
			x[i] = 12 * rng.Float64()
		}
		x[0] = float64(r % 12) // integers: values on the edges
		x[1] = math.NaN()
		s.Add(x)
	}
	if got := s.Take(time.Hour); got != nil {
		t.Fatalf("closed at %d rows", got.Count)
	}
	x[0] = float64((SketchRows - 1) % 12)
	s.Add(x)
	sk := s.Take(time.Hour)
	if sk == nil || sk.Count != SketchRows {
		t.Fatalf("not closed at %d rows: %+v", SketchRows, sk)
	}
	raw, err := json.Marshal(Record{Time: time.Now(), Kind: "sketch", ID: "sketch-1", Version: 3, Sketch: sk})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > SketchMaxBytes {
		t.Fatalf("a sketch of %d predictions is %d bytes: over %d", SketchRows, len(raw), SketchMaxBytes)
	}
	t.Logf("a sketch of %d predictions of %d features: %d bytes", SketchRows, features, len(raw))
	if sk.Nulls[1] != SketchRows || sk.Counts[1][0] != 0 {
		t.Fatalf("missing values: %d nulls, %v", sk.Nulls[1], sk.Counts[1])
	}
	want := make([]uint64, 11)
	for r := range SketchRows {
		want[sort.SearchFloat64s(ref.Features[0].Edges, float64(r%12))]++
	}
	if fmt.Sprint(want) != fmt.Sprint(sk.Counts[0]) {
		t.Fatalf("bins of 0..11: %v, want %v (a value on an edge is in the bin it closes)", sk.Counts[0], want)
	}
	if next := s.Take(0); next != nil {
		t.Fatalf("a new sketch begins empty: %+v", next)
	}
}
