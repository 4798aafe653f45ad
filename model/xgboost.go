package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/driftline/driftline/model/hparams"
)

// xgbModel is the part of XGBoost's JSON model format (Booster.save_model("m.json")) that
// prediction needs.
type xgbModel struct {
	Learner struct {
		FeatureNames []string `json:"feature_names"`
		Param        struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		Booster struct {
			Name  string `json:"name"`
			Model struct {
				Trees    []xgbTree `json:"trees"`
				TreeInfo []int     `json:"tree_info"`
			} `json:"model"`
		} `json:"gradient_booster"`
	} `json:"learner"`
}

type xgbTree struct {
	Left       []int32   `json:"left_children"`
	Right      []int32   `json:"right_children"`
	Split      []int32   `json:"split_indices"`
	Conditions []float64 `json:"split_conditions"`
	Default    []int     `json:"default_left"`
	SplitType  []int     `json:"split_type"`
	Hessian    []float64 `json:"sum_hessian"`
}

// LoadXGBoostJSON converts a model XGBoost saved as JSON into a Driftline model that gives
// XGBoost's predictions: inputs are rounded to float32 and compared as XGBoost does (left
// when x < split condition, missing values the default way) and leaf values are summed in
// float32. features names the inputs in column order; empty takes the model's own feature
// names. Objectives: reg:squarederror, reg:absoluteerror, binary:logistic.
func LoadXGBoostJSON(data []byte, features []string, target string) (*Model, error) {
	var x xgbModel
	if err := json.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("%w: not an XGBoost JSON model: %v", ErrBadArtifact, err)
	}
	l := &x.Learner
	if l.Booster.Name != "gbtree" {
		return nil, fmt.Errorf("%w: XGBoost booster %q; only gbtree is supported", ErrBadArtifact, l.Booster.Name)
	}
	if nc := l.Param.NumClass; nc != "" && nc != "0" && nc != "1" {
		return nil, fmt.Errorf("%w: XGBoost model with %s classes; only regression and binary models are supported", ErrBadArtifact, nc)
	}
	if len(features) == 0 {
		features = l.FeatureNames
	}
	p, err := strconv.Atoi(l.Param.NumFeature)
	if err != nil {
		return nil, fmt.Errorf("%w: XGBoost num_feature %q", ErrBadArtifact, l.Param.NumFeature)
	}
	if len(features) != p {
		return nil, fmt.Errorf("%w: XGBoost model has %d features, %d names given (pass the feature names when the model has none)", ErrBadArtifact, p, len(features))
	}
	base, err := strconv.ParseFloat(strings.Trim(l.Param.BaseScore, "[]"), 64)
	if err != nil {
		return nil, fmt.Errorf("%w: XGBoost base_score %q", ErrBadArtifact, l.Param.BaseScore)
	}
	e := &Ensemble{Float32Inputs: true}
	switch l.Objective.Name {
	case "reg:squarederror":
		e.Objective = hparams.SquaredError
	case "reg:absoluteerror":
		e.Objective = hparams.AbsoluteError
	case "binary:logistic":
		e.Objective = hparams.BinaryLogLoss
		base = math.Log(base / (1 - base)) // base_score is a probability
	default:
		return nil, fmt.Errorf("%w: XGBoost objective %q is not supported (reg:squarederror, reg:absoluteerror, binary:logistic)", ErrBadArtifact, l.Objective.Name)
	}
	e.BaseScore = float64(float32(base))
	for k, xt := range l.Booster.Model.Trees {
		t, err := xt.tree(k)
		if err != nil {
			return nil, err
		}
		e.Trees = append(e.Trees, t)
	}
	if len(e.Trees) == 0 {
		return nil, fmt.Errorf("%w: XGBoost model has no trees", ErrBadArtifact)
	}
	e.BestIteration = len(e.Trees)
	m := &Model{Family: "gbdt", Trainer: "xgboost", Objective: e.Objective, Features: features, Inputs: NumericInputs(features),
		Target: target, GBDT: e, Settings: map[string]string{"source": "xgboost-json", "xgboost_objective": l.Objective.Name}}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArtifact, err)
	}
	return m, nil
}

// tree is XGBoost tree k as a Tree: its thresholds made inclusive, each internal node's
// cover the sum of its children's.
func (xt *xgbTree) tree(k int) (Tree, error) {
	n := len(xt.Left)
	if len(xt.Right) != n || len(xt.Split) != n || len(xt.Conditions) != n || len(xt.Default) != n || len(xt.Hessian) != n {
		return Tree{}, fmt.Errorf("%w: XGBoost tree %d: node arrays of different lengths", ErrBadArtifact, k)
	}
	t := Tree{Feature: make([]int32, n), Threshold: make([]float64, n), DefaultLeft: make([]bool, n), Left: make([]int32, n),
		Right: make([]int32, n), Value: make([]float64, n), Cover: make([]float64, n)}
	for i := range n {
		if len(xt.SplitType) == n && xt.SplitType[i] != 0 {
			return Tree{}, fmt.Errorf("%w: XGBoost tree %d node %d is a categorical split; not supported", ErrBadArtifact, k, i)
		}
		t.Cover[i] = xt.Hessian[i]
		if xt.Left[i] < 0 {
			t.Left[i], t.Right[i], t.Feature[i] = -1, -1, -1
			t.Value[i] = xt.Conditions[i]
			continue
		}
		t.Left[i], t.Right[i], t.Feature[i] = xt.Left[i], xt.Right[i], xt.Split[i]
		t.DefaultLeft[i] = xt.Default[i] != 0
		// float32(x) < c  <=>  float32(x) <= the float32 just below c.
		c := float32(xt.Conditions[i])
		t.Threshold[i] = float64(math.Nextafter32(c, float32(math.Inf(-1))))
	}
	// XGBoost stores hessian sums rounded to float32, so children need not add up to
	// their parent; explanations are exact only when they do. Leaves keep their cover,
	// internal nodes get their children's sum.
	var sum func(i int32, depth int) float64
	sum = func(i int32, depth int) float64 {
		if t.Left[i] < 0 || depth > maxPath || int(t.Left[i]) >= n || int(t.Right[i]) >= n || t.Right[i] < 0 {
			return t.Cover[i]
		}
		t.Cover[i] = sum(t.Left[i], depth+1) + sum(t.Right[i], depth+1)
		return t.Cover[i]
	}
	if n > 0 {
		sum(0, 0)
	}
	return t, nil
}

// float32Margin sums leaves in float32 in tree order, as XGBoost's predictor does.
func (e *Ensemble) float32Margin(x []float64) float64 {
	var s float32
	cats := e.cats()
	for k := range e.Trees {
		t := &e.Trees[k]
		s += float32(t.Value[t.leaf(x, cats)])
	}
	return float64(float32(e.BaseScore) + s)
}

// IsXGBoostJSON reports whether data looks like an XGBoost JSON model rather than a
// Driftline artifact.
func IsXGBoostJSON(data []byte) bool {
	var probe struct {
		Learner json.RawMessage `json:"learner"`
		Version json.RawMessage `json:"version"`
	}
	return json.Unmarshal(data, &probe) == nil && len(probe.Learner) > 0 && len(probe.Version) > 0
}
