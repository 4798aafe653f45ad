package model

import (
	"crypto/ed25519"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/model/hparams"
)

// onnxFixture is a graph made by testdata/onnx/make.py and the predictions its source made.
type onnxFixture struct {
	Note     string       `json:"note"`
	Features []string     `json:"features"`
	X        [][]float64  `json:"-"`
	Rows     [][]*float64 `json:"x"` // null: missing
	Expected []float64    `json:"expected"`
}

func loadONNXFixture(t testing.TB, name string) (*Model, onnxFixture) {
	raw, err := os.ReadFile(filepath.Join("testdata", "onnx", name+".onnx"))
	require.NoError(t, err)
	js, err := os.ReadFile(filepath.Join("testdata", "onnx", name+".json"))
	require.NoError(t, err)
	var fx onnxFixture
	require.NoError(t, json.Unmarshal(js, &fx))
	for _, r := range fx.Rows {
		x := make([]float64, len(r))
		for i, v := range r {
			x[i] = math.NaN()
			if v != nil {
				x[i] = *v
			}
		}
		fx.X = append(fx.X, x)
	}
	m, err := LoadONNX(raw, fx.Features, "y")
	require.NoError(t, err, name)
	return m, fx
}

// scikit-learn's GradientBoosting and RandomForest models, written as ONNX tree ensembles of
// opsets 1, 3 and 5 (every comparison mode, base values, averaging, the logistic transform,
// a classifier's second column), predict what scikit-learn predicted: within 1e-9 relative
// where the graph holds doubles, within float32's rounding where it holds floats (opset 1:
// its split values and leaves are float32, and ONNX Runtime sums them in float32).
func TestONNXTreeEnsemblesPredictAsScikitLearn(t *testing.T) {
	for _, c := range []struct {
		name  string
		tol   float64
		obj   string
		trees int
	}{
		{"gbr_opset3_double", 1e-9, hparams.SquaredError, 60},
		{"gbr_opset3_modes", 1e-9, hparams.SquaredError, 60},
		{"gbr_opset5_modes", 1e-9, hparams.SquaredError, 61}, // opset 5 has no base_values: a one-leaf tree holds it
		{"gbr_opset1_float", 2e-6, hparams.SquaredError, 60},
		{"rfr_opset3_average", 1e-9, hparams.SquaredError, 30},
		{"gbc_opset3_logistic", 1e-9, hparams.BinaryLogLoss, 40},
		{"rfc_opset3_probability", 1e-9, hparams.SquaredError, 25},
		{"hand_eq_opset3", 0, hparams.SquaredError, 1},
		{"hand_member_opset5", 0, hparams.SquaredError, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, fx := loadONNXFixture(t, c.name)
			require.Equal(t, c.obj, m.Objective)
			require.Len(t, m.GBDT.Trees, c.trees)
			worst := 0.0
			for i, x := range fx.X {
				got, want := m.Predict(x), fx.Expected[i]
				d := math.Abs(got-want) / math.Max(1, math.Abs(want))
				worst = max(worst, d)
				require.LessOrEqual(t, d, c.tol, "row %d %v: got %v, %s gave %v", i, x, got, fx.Note, want)
			}
			t.Logf("%s: %d rows, largest relative difference %.2g (%s)", c.name, len(fx.X), worst, m.Settings["onnx_precision"])
		})
	}
}

// An imported ONNX model explains itself exactly: TreeSHAP (covers from the graph's hit
// rates) sums to the margin and, on the small trees, equals the Shapley values by
// enumeration; its int8 variant's edge bundle predicts as the variant bit for bit.
func TestAnONNXModelExplainsQuantisesAndRunsAtTheEdge(t *testing.T) {
	m, fx := loadONNXFixture(t, "gbr_opset3_double")
	for i, x := range fx.X[:50] {
		base, contrib := m.Explain(x)
		sum := base
		for _, c := range contrib {
			sum += c
		}
		require.InDelta(t, m.Predict(x), sum, 1e-9*math.Max(1, math.Abs(sum)), "row %d", i)
	}
	small, hand := loadONNXFixture(t, "hand_member_opset5")
	for _, x := range hand.X {
		_, contrib := small.Explain(x)
		want := bruteShapley(small.GBDT, x, 3)
		for i := range contrib {
			require.InDelta(t, want[i], contrib[i], 1e-9, "x %v feature %d", x, i)
		}
	}
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	for _, c := range []struct {
		m    *Model
		rows [][]float64
	}{{m, fx.X}, {small, hand.X}} {
		q, bundle := bundleOf(t, c.m, key)
		em, err := edge.Load(bundle, edge.Options{Keys: []ed25519.PublicKey{pub}})
		require.NoError(t, err)
		for i, x := range c.rows {
			got, err := em.Predict(x)
			require.NoError(t, err)
			require.Equal(t, math.Float64bits(q.Predict(x)), math.Float64bits(got), "row %d", i)
		}
	}
}

// float32Cut makes "x <= cut" decide as "float32(x) <= s" (or < s) for every float64 x:
// checked around random split values, at ties, subnormals, zero and the float32 limits.
func TestFloat32CutDecidesAsTheRoundedInput(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	splits := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-45, -1e-45, 1e-39, math.MaxFloat32, -math.MaxFloat32, 1e39, -1e39, math.Inf(1), math.Inf(-1)}
	for range 2000 {
		splits = append(splits, r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)), float64(float32(r.NormFloat64())))
	}
	for _, s := range splits {
		for _, strict := range []bool{false, true} {
			cut := float32Cut(s, strict)
			probe := []float64{cut, math.Nextafter(cut, math.Inf(1)), math.Nextafter(cut, math.Inf(-1)), s, math.Nextafter(s, 0)}
			f := float32(s)
			for _, g := range []float32{f, math.Nextafter32(f, float32(math.Inf(1))), math.Nextafter32(f, float32(math.Inf(-1)))} {
				mid := float64(g) + (float64(math.Nextafter32(g, float32(math.Inf(1))))-float64(g))/2
				probe = append(probe, float64(g), mid, math.Nextafter(mid, math.Inf(1)), math.Nextafter(mid, math.Inf(-1)))
			}
			for _, x := range probe {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					continue
				}
				want := float64(float32(x)) <= s
				if strict {
					want = float64(float32(x)) < s
				}
				require.Equal(t, want, x <= cut, "split %v strict %v: x %v (float32 %v), cut %v", s, strict, x, float32(x), cut)
			}
		}
	}
}

// A tiny ONNX writer for the tests: the fields the reader reads.
func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func attrInts(name string, vs ...int64) []byte {
	b := pbBytes(nil, 1, []byte(name))
	var packed []byte
	for _, v := range vs {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	return pbBytes(b, 8, packed)
}

func attrInt(name string, v int64) []byte {
	return pbVarint(pbBytes(nil, 1, []byte(name)), 3, uint64(v))
}

func attrString(name, v string) []byte {
	return pbBytes(pbBytes(nil, 1, []byte(name)), 4, []byte(v))
}

func attrStrings(name string, vs ...string) []byte {
	b := pbBytes(nil, 1, []byte(name))
	for _, v := range vs {
		b = pbBytes(b, 9, []byte(v))
	}
	return b
}

func attrFloats(name string, vs ...float64) []byte {
	var packed []byte
	for _, v := range vs {
		packed = protowire.AppendFixed32(packed, math.Float32bits(float32(v)))
	}
	return pbBytes(pbBytes(nil, 1, []byte(name)), 7, packed)
}

func onnxNodeProto(op, domain string, inputs, outputs []string, attrs ...[]byte) []byte {
	var b []byte
	for _, in := range inputs {
		b = pbBytes(b, 1, []byte(in))
	}
	for _, out := range outputs {
		b = pbBytes(b, 2, []byte(out))
	}
	b = pbBytes(b, 3, []byte(op+"_0"))
	b = pbBytes(b, 4, []byte(op))
	b = pbBytes(b, 7, []byte(domain))
	for _, a := range attrs {
		b = pbBytes(b, 5, a)
	}
	return b
}

// onnxModelProto is a model of the nodes reading graph input X (float, [N, p]).
func onnxModelProto(opset int64, p int64, nodes ...[]byte) []byte {
	dim := func(d int64) []byte { return pbBytes(nil, 1, pbVarint(nil, 1, uint64(d))) }
	shape := append(pbBytes(nil, 1, nil), dim(p)...)
	tensorType := pbBytes(pbVarint(nil, 1, onnxFloat), 2, shape)
	input := pbBytes(pbBytes(nil, 1, []byte("X")), 2, pbBytes(nil, 1, tensorType))
	var g []byte
	for _, n := range nodes {
		g = pbBytes(g, 1, n)
	}
	g = pbBytes(g, 11, input)
	m := pbVarint(nil, 1, 8)
	m = pbBytes(m, 8, pbVarint(pbBytes(nil, 1, []byte("ai.onnx.ml")), 2, uint64(opset)))
	return pbBytes(m, 7, g)
}

// stumpRegressor is TreeEnsembleRegressor: x[feature] <= 0.5 ? 1 : 2, plus base 0.25; the
// replace pairs swap attributes.
func stumpRegressor(feature int64, replace map[string][]byte) []byte {
	return stump("TreeEnsembleRegressor", feature, replace)
}

// stump is stumpRegressor's node with another operator's name.
func stump(op string, feature int64, replace map[string][]byte) []byte {
	attrs := map[string][]byte{
		"nodes_treeids":      attrInts("nodes_treeids", 0, 0, 0),
		"nodes_nodeids":      attrInts("nodes_nodeids", 0, 1, 2),
		"nodes_featureids":   attrInts("nodes_featureids", feature, 0, 0),
		"nodes_modes":        attrStrings("nodes_modes", "BRANCH_LEQ", "LEAF", "LEAF"),
		"nodes_values":       attrFloats("nodes_values", 0.5, 0, 0),
		"nodes_truenodeids":  attrInts("nodes_truenodeids", 1, 0, 0),
		"nodes_falsenodeids": attrInts("nodes_falsenodeids", 2, 0, 0),
		"target_treeids":     attrInts("target_treeids", 0, 0),
		"target_nodeids":     attrInts("target_nodeids", 1, 2),
		"target_ids":         attrInts("target_ids", 0, 0),
		"target_weights":     attrFloats("target_weights", 1, 2),
		"base_values":        attrFloats("base_values", 0.25),
		"n_targets":          attrInt("n_targets", 1),
	}
	for k, v := range replace {
		attrs[k] = v
	}
	var list [][]byte
	for _, k := range []string{"nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values", "nodes_truenodeids",
		"nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids", "target_weights", "base_values", "n_targets",
		"post_transform", "aggregate_function", "classlabels_int64s", "class_treeids", "class_nodeids", "class_ids", "class_weights"} {
		if v := attrs[k]; v != nil {
			list = append(list, v)
		}
	}
	return onnxNodeProto(op, "ai.onnx.ml", []string{"X"}, []string{"Y"}, list...)
}

// What the importer cannot read, or will not, is refused naming why.
func TestONNXModelsThatCannotBeImportedAreRefused(t *testing.T) {
	good := onnxModelProto(3, 2, stumpRegressor(1, nil))
	m, err := LoadONNX(good, []string{"a", "b"}, "y")
	require.NoError(t, err)
	require.Equal(t, 1.25, m.Predict([]float64{9, 0.5}))
	require.Equal(t, 2.25, m.Predict([]float64{9, 0.75}))
	require.Equal(t, 2.25, m.Predict([]float64{9, math.NaN()}), "NaN: the false branch unless it tracks true")
	classifier := stump("TreeEnsembleClassifier", 0, map[string][]byte{"n_targets": nil,
		"target_treeids": nil, "target_nodeids": nil, "target_ids": nil, "target_weights": nil,
		"classlabels_int64s": attrInts("classlabels_int64s", 0, 1, 2), "class_treeids": attrInts("class_treeids", 0, 0),
		"class_nodeids": attrInts("class_nodeids", 1, 2), "class_ids": attrInts("class_ids", 0, 2), "class_weights": attrFloats("class_weights", 1, 1)})
	scaler := onnxNodeProto("Scaler", "ai.onnx.ml", []string{"X"}, []string{"Xs"}, attrFloats("scale", 1, 1))
	for _, c := range []struct {
		data     []byte
		features int
		want     string
	}{
		{[]byte("{\"learner\": {}}"), 2, "not an ONNX model"},
		{good[:len(good)/2], 2, "truncated, or not an ONNX model"},
		{onnxModelProto(6, 2, stumpRegressor(1, nil)), 2, "ai.onnx.ml opset 6; this build reads opsets 1 to 5"},
		{onnxModelProto(3, 2, scaler, stumpRegressor(1, nil)), 2, "unsupported operator ai.onnx.ml.Scaler"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"target_weights": attrFloats("target_weights", 1, math.NaN())})), 2, "non-finite value"},
		{good, 3, "the input \"X\" has 2 features, 3 names given"},
		{good, 0, "ONNX graphs carry no feature names"},
		{onnxModelProto(3, 2, stumpRegressor(5, nil)), 2, "feature 5"},
		{onnxModelProto(3, 2, classifier), 2, "3 classes; only binary classifiers"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"post_transform": attrString("post_transform", "PROBIT")})), 2, "post_transform PROBIT is not supported"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"aggregate_function": attrString("aggregate_function", "MAX")})), 2, "aggregate_function MAX is not supported"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"n_targets": attrInt("n_targets", 3)})), 2, "3 targets"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"nodes_modes": attrStrings("nodes_modes", "BRANCH_LEQ", "LEAF", "BRANCH_WHATEVER")})), 2, "mode \"BRANCH_WHATEVER\""},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"nodes_truenodeids": attrInts("nodes_truenodeids", 7, 0, 0)})), 2, "not both in the tree"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"nodes_values": attrFloats("nodes_values", 0.5)})), 2, "nodes_values has 1 entries, the nodes are 3"},
		{onnxModelProto(3, 2, stumpRegressor(1, map[string][]byte{"target_nodeids": attrInts("target_nodeids", 0, 2)})), 2, "which is not a leaf"},
		{onnxModelProto(4, 2, stump("TreeEnsemble", 1, nil)), 2, "needs ai.onnx.ml opset 5"},
	} {
		features := []string{"a", "b", "c"}[:c.features]
		_, err := LoadONNX(c.data, features, "y")
		require.ErrorIs(t, err, ErrBadArtifact, c.want)
		require.ErrorContains(t, err, c.want)
	}
}

// onnxChain5000 is a TreeEnsembleRegressor of 5,000 trees of 31 leaves each (chains of 30
// splits), as a LightGBM conversion of that size would be.
func onnxChain5000() []byte {
	var treeIDs, nodeIDs, feats, trueIDs, falseIDs, wTree, wNode, wIDs []int64
	var modes []string
	var values, weights []float64
	for k := range int64(5000) {
		for i := range int64(61) {
			treeIDs, nodeIDs = append(treeIDs, k), append(nodeIDs, i)
			if i%2 == 1 || i == 60 { // odd ids and the last are leaves
				modes, feats, values, trueIDs, falseIDs = append(modes, "LEAF"), append(feats, 0), append(values, 0), append(trueIDs, 0), append(falseIDs, 0)
				wTree, wNode, wIDs, weights = append(wTree, k), append(wNode, i), append(wIDs, 0), append(weights, float64(i-30)/100)
				continue
			}
			modes, feats = append(modes, "BRANCH_LEQ"), append(feats, (i/2+k)%10)
			values = append(values, float64(i)/7+float64(k%13)/11)
			trueIDs, falseIDs = append(trueIDs, i+1), append(falseIDs, i+2)
		}
	}
	node := onnxNodeProto("TreeEnsembleRegressor", "ai.onnx.ml", []string{"X"}, []string{"Y"},
		attrInts("nodes_treeids", treeIDs...), attrInts("nodes_nodeids", nodeIDs...), attrInts("nodes_featureids", feats...),
		attrStrings("nodes_modes", modes...), attrFloats("nodes_values", values...), attrInts("nodes_truenodeids", trueIDs...),
		attrInts("nodes_falsenodeids", falseIDs...), attrInts("target_treeids", wTree...), attrInts("target_nodeids", wNode...),
		attrInts("target_ids", wIDs...), attrFloats("target_weights", weights...))
	return onnxModelProto(3, 10, node)
}

// BenchmarkLoadONNX5000Trees loads an ONNX tree ensemble of 5,000 trees of 31 leaves (the
// issue's goal: under 1 s; ONNX Runtime has been reported taking 2 minutes to load a model of
// that size in Triton).
func BenchmarkLoadONNX5000Trees(b *testing.B) {
	data := onnxChain5000()
	features := []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadONNX(data, features, "y"); err != nil {
			b.Fatal(err)
		}
	}
}

// Whatever bytes come in, the importer answers a model or an error, never a panic.
func FuzzLoadONNX(f *testing.F) {
	f.Add(onnxModelProto(3, 2, stumpRegressor(1, nil)))
	for _, name := range []string{"hand_eq_opset3", "hand_member_opset5"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "onnx", name+".onnx"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadONNX(data, []string{"a", "b", "c"}, "y")
		if err == nil {
			_ = m.Predict([]float64{0.25, math.NaN(), 1})
		}
	})
}
