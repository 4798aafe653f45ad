package model

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/model/hparams"
)

// leavesTestdata is github.com/dmitryikh/leaves' testdata in the module cache (MIT licence;
// read there, not copied): LightGBM models with the predictions LightGBM made of them.
func leavesTestdata(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/dmitryikh/leaves").Output()
	require.NoError(t, err, "the leaves module is in go.mod")
	return filepath.Join(strings.TrimSpace(string(out)), "testdata")
}

// readTable reads whitespace-separated numbers, a row a line.
func readTable(t *testing.T, path string) [][]float64 {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Fields(sc.Text()) {
			v, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err)
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

func relDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(1, math.Abs(b))
}

// LightGBM models from leaves' testdata give LightGBM's own predictions to 1e-12 (relative):
// a binary DART model, and every class of a multiclass model with categorical splits (its raw
// scores, class by class, where its categories fit Driftline's 0-253; the others, and a binary
// random forest, are refused with the reason).
func TestLightGBMModelsPredictAsLightGBM(t *testing.T) {
	dir := leavesTestdata(t)
	cases := []struct {
		model, data, truth string
		class, classes     int
		objective          string
	}{
		{model: "lg_dart_breast_cancer.model", data: "breast_cancer_test.tsv", truth: "lg_dart_breast_cancer_true_predictions.txt", class: -1, objective: hparams.BinaryLogLoss},
		{model: "lg_kddcup99.model", data: "kddcup99_test.tsv", truth: "lg_kddcup99_true_predictions.txt", class: 0, classes: 13},
	}
	compared, refused := 0, 0
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join(dir, c.model))
		require.NoError(t, err)
		rows := readTable(t, filepath.Join(dir, c.data))
		truth := readTable(t, filepath.Join(dir, c.truth))
		require.Len(t, truth, len(rows), c.model)
		for class := c.class; class < max(c.classes, 0) || class == c.class; class++ {
			m, err := loadLightGBM(raw, nil, "y", class)
			if err != nil && strings.Contains(err.Error(), "categorical features hold categories 0-253") {
				t.Logf("%s class %d refused: %v", c.model, class, err)
				refused++
				continue
			}
			require.NoError(t, err, c.model)
			compared++
			if class < 0 {
				require.Equal(t, c.objective, m.Objective)
			}
			worst := 0.0
			for i, x := range rows {
				var got float64
				if class < 0 {
					got = m.Predict(x)
				} else {
					got = m.GBDT.Margin(x)
				}
				want := truth[i][max(class, 0)]
				worst = math.Max(worst, relDiff(got, want))
			}
			t.Logf("%s class %d: %d rows, largest relative difference %.3g", c.model, class, len(rows), worst)
			require.Less(t, worst, 1e-12, "%s class %d", c.model, class)
			if class < 0 {
				break
			}
		}
	}
	// kddcup99's classes whose trees send a category above 253 left are refused by name.
	require.Equal(t, 1+11, compared, "dart and eleven classes of kddcup99 compared")
	require.Equal(t, 2, refused)
	raw, err := os.ReadFile(filepath.Join(dir, "lg_rf_iris.model"))
	require.NoError(t, err)
	_, err = LoadLightGBM(raw, nil, "y")
	require.ErrorContains(t, err, "random forest (average_output)")
}

// lgModel is a LightGBM text model of one tree (its splits, children and leaves as given).
func lgModel(version, objective, tree string) []byte {
	return []byte("tree\nversion=" + version + "\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\nobjective=" + objective +
		"\nfeature_names=a b\nfeature_infos=[-1:1] [-1:1]\n\nTree=0\n" + tree + "\nshrinkage=1\n\n\nend of trees\n\nfeature_importances:\na=1\n")
}

// lgDecision is LightGBM's numerical decision (tree.h, NumericalDecision), written from its
// source: NaN is zero unless the missing type is NaN; a zero (within kZeroThreshold) under
// missing type Zero, or NaN under NaN, goes the default way; otherwise left at or below the
// threshold.
func lgDecision(v, thr float64, dt int) bool {
	mt := (dt >> 2) & 3
	if math.IsNaN(v) && mt != 2 {
		v = 0
	}
	if (mt == 1 && v >= -lgZero && v <= lgZero) || (mt == 2 && math.IsNaN(v)) {
		return dt&2 != 0
	}
	return v <= thr
}

// Every missing type (None, Zero, NaN), both default directions and thresholds on and around
// the zero band: the imported split decides every value as LightGBM does, NaN, both zeros,
// the band's edges and one ulp either side included.
func TestLightGBMMissingValuesGoWhereLightGBMSendsThem(t *testing.T) {
	z := lgZero
	values := []float64{math.NaN(), 0, math.Copysign(0, -1), 1e-36, -1e-36, z, -z, math.Nextafter(z, 1), math.Nextafter(-z, -1),
		math.Nextafter(z, 0), 0.25, -0.25, 0.5, -0.5, 1, -1, math.Inf(1), math.Inf(-1)}
	for _, thr := range []float64{0.5, -0.25, 0, 1e-36, -1e-36, z, -z, math.Nextafter(-z, -1)} {
		for _, mt := range []int{0, 1, 2} {
			for _, dl := range []int{0, 2} {
				dt := mt<<2 | dl
				tree := "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=" + strconv.FormatFloat(thr, 'g', -1, 64) +
					"\ndecision_type=" + strconv.Itoa(dt) + "\nleft_child=-1\nright_child=-2\nleaf_value=1 2\nleaf_weight=3 4\nleaf_count=3 4\ninternal_value=0\ninternal_weight=7\ninternal_count=7\nis_linear=0"
				m, err := LoadLightGBM(lgModel("v4", "regression", tree), nil, "y")
				require.NoError(t, err, "decision_type %d threshold %g", dt, thr)
				for _, v := range append(values, thr, math.Nextafter(thr, 1), math.Nextafter(thr, -1)) {
					want := 2.0
					if lgDecision(v, thr, dt) {
						want = 1
					}
					require.Equal(t, want, m.Predict([]float64{v, 0}), "decision_type %d threshold %g value %g", dt, thr, v)
					require.Equal(t, want, m.GBDT.Margin([]float64{v, 0}))
				}
				_, contrib := m.Explain([]float64{0.1, 0})
				require.InDelta(t, m.Predict([]float64{0.1, 0}), m.GBDT.ExpectedMargin()+contrib[0]+contrib[1], 1e-12, "explanations add up")
			}
		}
	}
}

// What the importer cannot read, or will not, is refused naming why: another format, a
// truncated file, a linear tree, a multiclass model, a sigmoid other than 1, an unknown
// objective, a bad line, features that do not match.
func TestLightGBMModelsThatCannotBeImportedAreRefused(t *testing.T) {
	tree := "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0.5\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\nleaf_weight=3 4\nleaf_count=3 4\ninternal_value=0\ninternal_weight=7\ninternal_count=7"
	good := lgModel("v3", "binary sigmoid:1", tree)
	m, err := LoadLightGBM(good, nil, "y")
	require.NoError(t, err)
	require.Equal(t, hparams.BinaryLogLoss, m.Objective)
	require.Equal(t, []string{"a", "b"}, m.Features)
	require.InDelta(t, 1/(1+math.Exp(-1)), m.Predict([]float64{0, 0}), 1e-15)
	for _, c := range []struct {
		data []byte
		want string
	}{
		{[]byte("{\"learner\": {}}"), "not a LightGBM text model"},
		{good[:strings.Index(string(good), "leaf_value")], "without \"end of trees\""},
		{good[:len(good)/2], "is not key=value"},
		{lgModel("v1", "regression", tree), "format \"v1\""},
		{lgModel("v4", "regression", tree+"\nis_linear=1"), "a linear tree"},
		{lgModel("v3", "binary sigmoid:2", tree), "only sigmoid:1"},
		{lgModel("v3", "poisson", tree), "objective \"poisson\" is not supported"},
		{lgModel("v3", "regression", strings.Replace(tree, "leaf_value=1 2", "leaf_value=1", 1)), "leaf_value holds 1 values, want 2"},
		{lgModel("v3", "regression", strings.Replace(tree, "split_feature=0", "split_feature=7", 1)), "feature 7 of 2"},
		{lgModel("v3", "regression", strings.Replace(tree, "right_child=-2", "right_child=0", 1)), "does not reach its leaves"},
		{lgModel("v3", "regression", strings.Replace(tree, "num_cat=0", "num_cat=0\nthis line is wrong", 1)), "is not key=value"},
		{[]byte(strings.Replace(string(lgModel("v3", "multiclass num_class:3", tree)), "num_class=1", "num_class=3", 1)), "3 classes"},
	} {
		_, err := LoadLightGBM(c.data, nil, "y")
		require.ErrorIs(t, err, ErrBadArtifact, c.want)
		require.ErrorContains(t, err, c.want)
	}
	_, err = LoadLightGBM(good, []string{"a"}, "y")
	require.ErrorContains(t, err, "2 features, 1 names given")
}

// An imported LightGBM model is a model like a built-in one: its int8 variant's edge bundle
// predicts as the variant bit for bit (categorical splits included), and its explanations
// add up to its predictions.
func TestALightGBMModelQuantisesAndRunsAtTheEdge(t *testing.T) {
	dir := leavesTestdata(t)
	raw, err := os.ReadFile(filepath.Join(dir, "lg_kddcup99.model"))
	require.NoError(t, err)
	m, err := loadLightGBM(raw, nil, "y", 0)
	require.NoError(t, err)
	rows := readTable(t, filepath.Join(dir, "kddcup99_test.tsv"))
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	q, bundle := bundleOf(t, m, key)
	em, err := edge.Load(bundle, edge.Options{Keys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	for i, x := range rows {
		got, err := em.Predict(x)
		require.NoError(t, err)
		require.Equal(t, math.Float64bits(q.Predict(x)), math.Float64bits(got), "row %d", i)
		base, contrib := m.Explain(x)
		sum := base
		for _, c := range contrib {
			sum += c
		}
		require.InDelta(t, m.Predict(x), sum, 1e-9*math.Max(1, math.Abs(sum)), "row %d: the explanation adds up", i)
	}
}

// BenchmarkLoadLightGBM5000Trees loads a LightGBM text model of 5,000 trees of 31 leaves
// (the goal: under 1 s).
func BenchmarkLoadLightGBM5000Trees(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=9\nobjective=regression\nfeature_names=f0 f1 f2 f3 f4 f5 f6 f7 f8 f9\n\n")
	for k := range 5000 {
		var feat, thr, dec, left, right, leaf, weight []string
		for i := range 30 { // a chain of 30 splits: node i's left child is a leaf, its right the next node
			feat, thr, dec = append(feat, strconv.Itoa((i+k)%10)), append(thr, strconv.FormatFloat(float64(i)/7+float64(k%13)/11, 'g', 17, 64)), append(dec, "10")
			left = append(left, strconv.Itoa(^i))
			if i < 29 {
				right = append(right, strconv.Itoa(i+1))
			} else {
				right = append(right, strconv.Itoa(^30))
			}
		}
		for j := range 31 {
			leaf, weight = append(leaf, strconv.FormatFloat(float64(j-15)/100, 'g', 17, 64)), append(weight, "1")
		}
		fmt.Fprintf(&sb, "Tree=%d\nnum_leaves=31\nnum_cat=0\nsplit_feature=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\nleaf_value=%s\nleaf_weight=%s\nshrinkage=0.1\n\n",
			k, strings.Join(feat, " "), strings.Join(thr, " "), strings.Join(dec, " "), strings.Join(left, " "), strings.Join(right, " "), strings.Join(leaf, " "), strings.Join(weight, " "))
	}
	sb.WriteString("end of trees\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadLightGBM(data, nil, "y"); err != nil {
			b.Fatal(err)
		}
	}
}

// Whatever bytes come in, the importer answers a model or an error, never a panic.
func FuzzLoadLightGBM(f *testing.F) {
	tree := "num_leaves=3\nnum_cat=1\nsplit_feature=0 1\nthreshold=0 0.5\ndecision_type=1 6\nleft_child=1 -1\nright_child=-3 -2\nleaf_value=1 2 3\nleaf_weight=1 1 1\ncat_boundaries=0 1\ncat_threshold=5"
	f.Add(lgModel("v3", "regression", tree))
	f.Add(lgModel("v4", "binary sigmoid:1", strings.Replace(tree, "decision_type=1 6", "decision_type=1 4", 1)))
	f.Add(lgModel("v2", "regression_l1", "num_leaves=1\nleaf_value=0.5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadLightGBM(data, nil, "y")
		if err == nil {
			_ = m.Predict([]float64{0.25, math.NaN()})
		}
	})
}

// TreeSHAP of an imported model (a Zero-missing split made into three, a NaN split, a
// categorical split) equals the Shapley values by enumeration, and sums to the margin.
func TestTreeSHAPOfALightGBMModelIsExact(t *testing.T) {
	text := "tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=2\nobjective=regression\nfeature_names=a b c\n\n" +
		"Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nthreshold=0.5 -0.25\ndecision_type=6 10\nleft_child=1 -1\nright_child=-3 -2\n" +
		"leaf_value=1.5 -2 0.25\nleaf_weight=3 5 7\n\n" +
		"Tree=1\nnum_leaves=2\nnum_cat=1\nsplit_feature=2\nthreshold=0\ndecision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=-0.5 0.75\nleaf_weight=4 6\n" +
		"cat_boundaries=0 1\ncat_threshold=10\n\nend of trees\n"
	m, err := LoadLightGBM([]byte(text), nil, "y")
	require.NoError(t, err)
	for _, x := range [][]float64{{0, 0.1, 1}, {math.NaN(), -1, 3}, {0.7, math.NaN(), 2}, {-3, 2, 7}, {1e-36, 0, math.NaN()}} {
		base, contrib := m.Explain(x)
		want := bruteShapley(m.GBDT, x, 3)
		sum := base
		for i := range contrib {
			require.InDelta(t, want[i], contrib[i], 1e-9, "x %v feature %d", x, i)
			sum += contrib[i]
		}
		require.InDelta(t, m.GBDT.Margin(x), sum, 1e-12, "x %v", x)
	}
}
