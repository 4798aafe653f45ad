package model

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/edgetest"
	"github.com/driftline/driftline/model/hparams"
)

var updateEdge = flag.Bool("update-edge", false, "rewrite the edge runtime's conformance fixtures in ../edge/testdata")

// edgeRows is how many rows the conformance fixtures are checked on, here and on every CPU.
const edgeRows = 1_000_000

// edgeModels trains the conformance models: trees with numeric and categorical features
// (squared error and binary log loss) and linear models (ridge and logistic).
func edgeModels(t testing.TB, trees int) map[string]*Model {
	const p = 6
	r := rand.New(rand.NewPCG(77, 7))
	n := 6000
	x, y, yb := make([]float64, n*p), make([]float64, n), make([]float64, n)
	for i := range n {
		row := x[i*p : i*p+p]
		for j := range 4 {
			row[j] = r.NormFloat64() * float64(j+1)
		}
		row[4], row[5] = float64(r.IntN(12)), float64(r.IntN(5))
		if r.IntN(20) == 0 {
			row[r.IntN(p)] = math.NaN()
		}
		v := 3*math.Sin(nz(row[0])) + nz(row[1])*nz(row[2]) - 0.5*nz(row[3]) + []float64{0, 2, -1, 4, 0, 1, 3, -2, 0, 1, 2, 5}[int(nz(row[4]))] + nz(row[5])
		y[i] = v + r.NormFloat64()*0.3
		if v > 1 {
			yb[i] = 1
		}
	}
	names := []string{"temperature", "price", "promo_depth", "lag_7", "store", "weekday"}
	cat := []bool{false, false, false, false, true, true}
	out := map[string]*Model{}
	for name, obj := range map[string]string{"trees-regression": hparams.SquaredError, "trees-binary": hparams.BinaryLogLoss} {
		target := y
		if obj == hparams.BinaryLogLoss {
			target = yb
		}
		mat, b := binned(t, x, target, p, cat, nil)
		params := hparams.Default()
		params.Trees, params.Objective, params.MaxDepth = trees, obj, 5
		e, _, err := TrainGBDT(mat, nil, b, params)
		require.NoError(t, err)
		out[name] = &Model{Family: "gbdt", Trainer: "gbdt", Objective: obj, Features: names, Inputs: NumericInputs(names), GBDT: e}
	}
	clean := make([]float64, len(x))
	for i, v := range x {
		clean[i] = nz(v)
	}
	lin, err := TrainRidge(columnsOf(clean, n, p), y, 1)
	require.NoError(t, err)
	out["linear-regression"] = &Model{Family: "linear", Trainer: "ridge", Objective: hparams.SquaredError, Features: names, Inputs: NumericInputs(names), Linear: lin}
	logit, _, err := TrainLogistic(p, 1, ColumnSource(columnsOf(clean, n, p), yb))
	require.NoError(t, err)
	out["linear-binary"] = &Model{Family: "linear", Trainer: "logistic", Objective: hparams.BinaryLogLoss, Features: names, Inputs: NumericInputs(names), Linear: logit}
	out["trees-wide"] = &Model{Family: "gbdt", Trainer: "xgboost", Objective: hparams.SquaredError, Features: names, Inputs: NumericInputs(names), GBDT: wideEnsemble(r, p)}
	return out
}

// wideEnsemble is a model as an import can be (trees trained elsewhere, thresholds anywhere):
// 700 trees of depth 2 whose first two features have 350 distinct thresholds each, more than
// a uint8 bin index holds, so its int8 variant and its bundle index them with 16 bits.
func wideEnsemble(r *rand.Rand, p int) *Ensemble {
	e := &Ensemble{Objective: hparams.SquaredError, BaseScore: 0.5}
	for k := range 700 {
		f := int32(k % 2)
		thr := math.Round(r.NormFloat64()*3*1000) / 1000
		g := int32(2 + k%(p-2))
		e.Trees = append(e.Trees, Tree{
			Feature:     []int32{f, g, 0, 0, 0},
			Threshold:   []float64{thr, r.NormFloat64() * 2, 0, 0, 0},
			DefaultLeft: []bool{k%3 == 0, k%5 == 0, false, false, false},
			Left:        []int32{1, 3, -1, -1, -1},
			Right:       []int32{2, 4, -1, -1, -1},
			Value:       []float64{0, 0, r.NormFloat64(), r.NormFloat64(), r.NormFloat64()},
			Cover:       []float64{100, 60, 40, 30, 30},
		})
	}
	return e
}

func nz(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// bundleOf quantises m and seals its edge bundle with key.
func bundleOf(t testing.TB, m *Model, key ed25519.PrivateKey) (*Model, []byte) {
	q, err := m.Quantise()
	require.NoError(t, err)
	body, err := edge.Encode(q.Int8.EdgeBody(q.Features, map[string][2]float64{"temperature": {-40, 50}}))
	require.NoError(t, err)
	b, err := edge.Seal(edge.Manifest{Model: "conformance", Version: 1, Counter: 1, Features: q.Features, Kind: q.Family}, body, key)
	require.NoError(t, err)
	return q, b
}

// The edge runtime's prediction of every row is the server's int8 variant's, bit for bit:
// trees and linear models, regression and binary, over rows at every threshold and one ulp
// either side, missing values, infinities and unseen categories.
func TestEdgeBundlePredictsAsTheInt8Variant(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	for name, m := range edgeModels(t, 60) {
		q, b := bundleOf(t, m, key)
		em, err := edge.Load(b, edge.Options{Keys: []ed25519.PublicKey{pub}, Features: m.Features})
		require.NoError(t, err, name)
		rows := edgetest.Rows(em.Features(), 50_000, 3)
		got := make([]float64, 50_000)
		require.NoError(t, em.PredictBatch(rows, got))
		for i := range got {
			want := q.Predict(rows[i*len(m.Features) : (i+1)*len(m.Features)])
			require.Equal(t, math.Float64bits(want), math.Float64bits(got[i]), "%s row %d %v: server %v, edge %v",
				name, i, rows[i*len(m.Features):(i+1)*len(m.Features)], want, got[i])
		}
		one, err := em.Predict(rows[:len(m.Features)])
		require.NoError(t, err)
		require.Equal(t, math.Float64bits(got[0]), math.Float64bits(one))
		require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = em.Predict(rows[:len(m.Features)]) }), "a prediction allocates nothing")
		require.Zero(t, testing.AllocsPerRun(10, func() { _ = em.PredictBatch(rows[:100*len(m.Features)], got[:100]) }))
	}
}

// The fixtures the runtime is checked on under other CPUs (edge/testdata) are the server's:
// each fixture's int8 variant, scored by the server's code over the fixture's 1,000,000 rows,
// gives the digest the fixture's file names. `go test ./model -run EdgeFixtures -update-edge`
// makes them again (new models, a new test key).
func TestEdgeFixturesAreTheServersPredictions(t *testing.T) {
	dir := filepath.Join("..", "edge", "testdata")
	if *updateEdge {
		writeEdgeFixtures(t, dir)
	}
	want := readDigests(t, filepath.Join(dir, "expected.txt"))
	require.Len(t, want, 5)
	for name, digest := range want {
		raw, err := os.ReadFile(filepath.Join(dir, name+".int8.json"))
		require.NoError(t, err)
		q, err := Unmarshal(raw)
		require.NoError(t, err)
		features := q.Int8.EdgeBody(q.Features, nil).Features
		rows := edgetest.Rows(features, edgeRows, 1)
		pred := make([]float64, edgeRows)
		p := len(features)
		for i := range pred {
			pred[i] = q.Predict(rows[i*p : (i+1)*p])
		}
		require.Equal(t, digest, edgetest.Digest(pred), "%s: the server's predictions over the fixture rows", name)
	}
}

func writeEdgeFixtures(t *testing.T, dir string) {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test-key.pub"), []byte(hex.EncodeToString(pub)+"\n"), 0o644))
	var lines []string
	for name, m := range edgeModels(t, 40) {
		q, b := bundleOf(t, m, key)
		art, err := q.Marshal()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".int8.json"), art, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".bundle"), b, 0o644))
		features := q.Int8.EdgeBody(q.Features, nil).Features
		rows := edgetest.Rows(features, edgeRows, 1)
		pred := make([]float64, edgeRows)
		for i := range pred {
			pred[i] = q.Predict(rows[i*len(features) : (i+1)*len(features)])
		}
		lines = append(lines, fmt.Sprintf("%s %d %s", name, edgeRows, edgetest.Digest(pred)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "expected.txt"), []byte(strings.Join(sortedLines(lines), "\n")+"\n"), 0o644))
}

func sortedLines(l []string) []string {
	out := append([]string(nil), l...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// readDigests reads "name rows digest" lines.
func readDigests(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		var name, digest string
		var rows int
		_, err := fmt.Sscanf(s.Text(), "%s %d %s", &name, &rows, &digest)
		require.NoError(t, err, s.Text())
		require.Equal(t, edgeRows, rows)
		out[name] = digest
	}
	return out
}

// A feature with more than 255 thresholds: the int8 variant indexes it with 16 bits, keeps
// its artifact readable (the high bytes apart), predicts within its quantisation of the float
// model without allocating (its bundle, with 16-bit indices, predicts as it bit for bit:
// TestEdgeBundlePredictsAsTheInt8Variant and the fixtures on every CPU).
func TestAWideInt8VariantIndexesWith16Bits(t *testing.T) {
	m := edgeModels(t, 5)["trees-wide"]
	q, err := m.Quantise()
	require.NoError(t, err)
	require.Greater(t, len(q.Int8.Thresholds[0]), 255)
	require.True(t, q.Int8.wide)
	require.NotNil(t, q.Int8.Trees[0].IndexHigh)
	art, err := q.Marshal()
	require.NoError(t, err)
	back, err := Unmarshal(art)
	require.NoError(t, err)
	rows := edgetest.Rows(q.Int8.EdgeBody(q.Features, nil).Features, 20_000, 5)
	p := len(q.Features)
	worst := 0.0
	for i := range 20_000 {
		x := rows[i*p : (i+1)*p]
		got := q.Predict(x)
		require.Equal(t, math.Float64bits(got), math.Float64bits(back.Predict(x)), "row %d: the artifact read back", i)
		if f := m.Predict(x); !math.IsInf(f, 0) && !math.IsNaN(f) {
			worst = math.Max(worst, math.Abs(got-f))
		}
	}
	// 700 leaves each off by at most half the scale.
	require.Less(t, worst, 700*q.Int8.Scale/2+1e-9)
	x := rows[:p]
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = q.Predict(x) }), "a prediction allocates nothing")
}
