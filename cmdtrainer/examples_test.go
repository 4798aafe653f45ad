package cmdtrainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

// exampleRows is a CSV of y = 3 x0 - 2 x1² + sin(3 x2) + noise, x1 missing in one row of
// twenty; the rows as numbers too.
func exampleRows(n int, seed uint64) (string, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 9))
	var sb strings.Builder
	sb.WriteString("x0,x1,x2,x3,y\n")
	var xs [][]float64
	var ys []float64
	for i := range n {
		x := []float64{r.NormFloat64(), r.NormFloat64(), r.NormFloat64(), r.Float64()}
		y := 3*x[0] - 2*x[1]*x[1] + math.Sin(3*x[2]) + 0.3*r.NormFloat64()
		if i%20 == 7 {
			x[1] = math.NaN()
		}
		for j, v := range x {
			if j > 0 {
				sb.WriteByte(',')
			}
			if !math.IsNaN(v) {
				sb.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		fmt.Fprintf(&sb, ",%s\n", strconv.FormatFloat(y, 'g', -1, 64))
		xs, ys = append(xs, x), append(ys, y)
	}
	return sb.String(), xs, ys
}

// The examples in examples/ (scikit-learn to ONNX, XGBoost JSON) train through the command
// trainer with Debian's Python, and the model Driftline imports predicts what the library
// predicted: the validation MAE the script computed with the library's own predict equals the
// imported model's (missing values included: the scikit-learn example fills them with the
// median in training and its graph sends them where the median goes).
func TestTheExamplesTrainThroughTheCommandTrainer(t *testing.T) {
	for _, c := range []struct {
		name, script, format string
		params               map[string]float64
		tol                  float64
	}{
		{"sklearn gradient boosting", "../examples/sklearn/train.py", model.FormatONNX, map[string]float64{"n_estimators": 80, "max_depth": 3}, 1e-9},
		{"sklearn random forest", "../examples/sklearn/train.py", model.FormatONNX, map[string]float64{"random_forest": 1, "n_estimators": 20, "max_depth": 6}, 1e-9},
		{"xgboost", "../examples/xgboost/train.py", model.FormatXGBoostJSON, map[string]float64{"num_boost_round": 120, "max_depth": 4, "early_stopping_rounds": 10}, 1e-6},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			train, _, _ := exampleRows(3000, 1)
			valid, vx, vy := exampleRows(400, 2)
			for name, body := range map[string]string{"train.csv": train, "validation.csv": valid} {
				_, err := r.store.Put(ctx, "reports/demand/run-1/external/"+name, []byte(body), objstore.PutOptions{})
				require.NoError(t, err)
			}
			r.in.Features, r.in.Target, r.in.Params = []string{"x0", "x1", "x2", "x3"}, "y", c.params
			script, err := filepath.Abs(c.script)
			require.NoError(t, err)
			tr := &Trainer{Store: r.store, WorkDir: filepath.Join(r.dir, "work"),
				Commands: map[string]Command{"fit": {Name: "fit", Argv: []string{"/usr/bin/python3", script}, Memory: 2 << 30}}}
			require.NoError(t, tr.Check())
			out, err := tr.Train(ctx, r.in)
			require.NoError(t, err)
			require.Equal(t, c.format, out.Format)
			key := strings.TrimPrefix(out.ArtifactURI, r.store.URI(""))
			raw, _, err := objstore.ReadAll(ctx, r.store, key)
			require.NoError(t, err)
			m, err := model.Import(out.Format, raw, r.in.Features, "y")
			require.NoError(t, err)
			var mae float64
			for i, x := range vx {
				mae += math.Abs(m.Predict(x) - vy[i])
			}
			mae /= float64(len(vx))
			want := out.Metrics["validation_mae"]
			require.Positive(t, want)
			require.InDelta(t, want, mae, c.tol*want, "the imported model's validation MAE is the library's")
			var mean, base float64
			for _, y := range vy {
				mean += y / float64(len(vy))
			}
			for _, y := range vy {
				base += math.Abs(y-mean) / float64(len(vy))
			}
			require.Less(t, mae, 0.6*base, "the model learned the function (predicting the mean: MAE %.3f)", base)
			log, _, err := objstore.ReadAll(ctx, r.store, "reports/demand/run-1/external/trainer-attempt-1.log")
			require.NoError(t, err)
			require.Contains(t, string(log), "training on 3000 rows")
			t.Logf("%s: validation MAE %.6f (library) %.6f (imported), %d trees", c.name, want, mae, len(m.GBDT.Trees))
		})
	}
}
