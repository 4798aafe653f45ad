package hparams

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Objectives (losses) of the built-in trainers.
const (
	SquaredError  = "squared_error"
	AbsoluteError = "absolute_error"
	BinaryLogLoss = "binary_logloss"
)

// Objectives lists them in a fixed order.
var Objectives = []string{SquaredError, AbsoluteError, BinaryLogLoss}

// Tree growth strategies.
const (
	Depthwise = "depthwise" // level by level, like XGBoost's default
	Leafwise  = "leafwise"  // best gain first, like LightGBM
)

// MaxBins is the most bins a feature can have (bins are one byte; one value is kept for
// missing values).
const MaxBins = 255

// GBDT are the gbdt hyperparameters. Zero values of a spec take the defaults of Default.
type GBDT struct {
	Objective string `json:"objective"`
	// Trees is the most boosting rounds.
	Trees int `json:"trees"`
	// Growth is Depthwise or Leafwise. MaxDepth bounds depth (0 = unbounded, leafwise only),
	// MaxLeaves bounds leaves per tree (0 = unbounded, depthwise only).
	Growth    string `json:"growth"`
	MaxDepth  int    `json:"max_depth"`
	MaxLeaves int    `json:"max_leaves"`
	MaxBins   int    `json:"max_bins"`
	// LearningRate shrinks every tree; Lambda is the L2 penalty on leaf values;
	// MinChildWeight the least hessian sum in a child; MinSplitLoss the least gain to split.
	LearningRate   float64 `json:"learning_rate"`
	Lambda         float64 `json:"lambda"`
	MinChildWeight float64 `json:"min_child_weight"`
	MinSplitLoss   float64 `json:"min_split_loss"`
	// Subsample is the share of rows drawn per tree; ColsampleByTree the share of features.
	Subsample       float64 `json:"subsample"`
	ColsampleByTree float64 `json:"colsample_bytree"`
	// EarlyStoppingRounds stops when the validation loss has not improved for this many
	// rounds (0 = off) and keeps the best round's trees.
	EarlyStoppingRounds int    `json:"early_stopping_rounds"`
	Seed                uint64 `json:"seed"`
	// Threads building histograms; 0 = GOMAXPROCS. The result does not depend on it.
	Threads int `json:"-"`
}

// param is one numeric hyperparameter: its spec name, default, allowed range and field.
type param struct {
	name    string
	integer bool
	def     float64
	// ok reports whether a value is allowed; want says what is, for the error.
	ok   func(v float64) bool
	want string
	get  func(*GBDT) float64
	set  func(*GBDT, float64)
}

func atLeast(lo float64) func(float64) bool { return func(v float64) bool { return v >= lo } }
func openClosed(lo, hi float64) func(float64) bool {
	return func(v float64) bool { return v > lo && v <= hi }
}

// table is every numeric gbdt hyperparameter, once (XGBoost's defaults where they exist).
var table = []param{
	{"trees", true, 100, atLeast(1), "at least 1", func(p *GBDT) float64 { return float64(p.Trees) }, func(p *GBDT, v float64) { p.Trees = int(v) }},
	{"max_depth", true, 6, atLeast(0), "not negative", func(p *GBDT) float64 { return float64(p.MaxDepth) }, func(p *GBDT, v float64) { p.MaxDepth = int(v) }},
	{"max_leaves", true, 0, atLeast(0), "not negative", func(p *GBDT) float64 { return float64(p.MaxLeaves) }, func(p *GBDT, v float64) { p.MaxLeaves = int(v) }},
	{"max_bins", true, MaxBins, func(v float64) bool { return v >= 2 && v <= MaxBins }, fmt.Sprintf("in 2..%d", MaxBins),
		func(p *GBDT) float64 { return float64(p.MaxBins) }, func(p *GBDT, v float64) { p.MaxBins = int(v) }},
	{"learning_rate", false, 0.3, openClosed(0, 1), "in (0, 1]", func(p *GBDT) float64 { return p.LearningRate }, func(p *GBDT, v float64) { p.LearningRate = v }},
	{"lambda", false, 1, atLeast(0), "not negative", func(p *GBDT) float64 { return p.Lambda }, func(p *GBDT, v float64) { p.Lambda = v }},
	{"min_child_weight", false, 1, atLeast(0), "not negative", func(p *GBDT) float64 { return p.MinChildWeight }, func(p *GBDT, v float64) { p.MinChildWeight = v }},
	{"min_split_loss", false, 0, atLeast(0), "not negative", func(p *GBDT) float64 { return p.MinSplitLoss }, func(p *GBDT, v float64) { p.MinSplitLoss = v }},
	{"subsample", false, 1, openClosed(0, 1), "in (0, 1]", func(p *GBDT) float64 { return p.Subsample }, func(p *GBDT, v float64) { p.Subsample = v }},
	{"colsample_bytree", false, 1, openClosed(0, 1), "in (0, 1]", func(p *GBDT) float64 { return p.ColsampleByTree }, func(p *GBDT, v float64) { p.ColsampleByTree = v }},
	{"early_stopping_rounds", true, 0, atLeast(0), "not negative", func(p *GBDT) float64 { return float64(p.EarlyStoppingRounds) }, func(p *GBDT, v float64) { p.EarlyStoppingRounds = int(v) }},
	{"seed", true, 0, atLeast(0), "not negative", func(p *GBDT) float64 { return float64(p.Seed) }, func(p *GBDT, v float64) { p.Seed = uint64(v) }},
}

// Names lists the numeric gbdt hyperparameters a spec may set, in the table's order.
func Names() []string {
	out := make([]string, len(table))
	for i, p := range table {
		out[i] = p.name
	}
	return out
}

// Default is the default gbdt hyperparameter set.
func Default() GBDT {
	p := GBDT{Objective: SquaredError, Growth: Depthwise}
	for _, t := range table {
		t.set(&p, t.def)
	}
	return p
}

// Validate names every bad hyperparameter.
func (p GBDT) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !slices.Contains(Objectives, p.Objective) {
		bad("objective: %q is not one of %s", p.Objective, strings.Join(Objectives, ", "))
	}
	for _, t := range table {
		if v := t.get(&p); !t.ok(v) {
			bad("%s: must be %s, got %g", t.name, t.want, v)
		}
	}
	switch p.Growth {
	case Depthwise:
		if p.MaxDepth < 1 {
			bad("max_depth: depthwise growth needs max_depth >= 1, got %d", p.MaxDepth)
		}
	case Leafwise:
		if p.MaxLeaves < 2 {
			bad("max_leaves: leafwise growth needs max_leaves >= 2, got %d", p.MaxLeaves)
		}
	default:
		bad("growth: %q is not %s or %s", p.Growth, Depthwise, Leafwise)
	}
	return errors.Join(errs...)
}

// From reads a spec's trainer settings over Default, naming any unknown or invalid field
// (trainer.params.<name>).
func From(objective, growth string, params map[string]float64) (GBDT, error) {
	p := Default()
	if objective != "" {
		p.Objective = objective
	}
	if growth != "" {
		p.Growth = growth
	}
	var errs []error
	known := map[string]bool{}
	for _, t := range table {
		known[t.name] = true
		v, ok := params[t.name]
		if !ok {
			continue
		}
		if t.integer && v != math.Trunc(v) {
			errs = append(errs, fmt.Errorf("trainer.params.%s: must be a whole number, got %g", t.name, v))
		}
		t.set(&p, v)
	}
	var unknown []string
	// Sorted before use: the map's order does not matter.
	//workflowcheck:ignore
	for k := range params {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("trainer.params.%s: not a gbdt parameter (known: %s)", k, strings.Join(Names(), ", ")))
	}
	if _, set := params["max_depth"]; p.Growth == Leafwise && !set {
		p.MaxDepth = 0
		if p.MaxLeaves == 0 {
			p.MaxLeaves = 31
		}
	}
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

// Settings is the parameter set as an artifact records it: the numeric ones by name, and the
// objective and growth.
func (p GBDT) Settings() (map[string]float64, map[string]string) {
	nums := make(map[string]float64, len(table))
	for _, t := range table {
		nums[t.name] = t.get(&p)
	}
	return nums, map[string]string{"objective": p.Objective, "growth": p.Growth}
}
