package hparams

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEveryParamRoundTrips(t *testing.T) {
	// Each parameter set to a distinct valid value comes back in the struct and in Settings.
	in := map[string]float64{"trees": 7, "max_depth": 3, "max_leaves": 9, "max_bins": 63, "learning_rate": 0.05,
		"lambda": 2.5, "min_child_weight": 3, "min_split_loss": 0.25, "subsample": 0.5, "colsample_bytree": 0.75,
		"early_stopping_rounds": 4, "seed": 11}
	require.ElementsMatch(t, Names(), keys(in), "the test covers every parameter of the table")
	p, err := From(AbsoluteError, Depthwise, in)
	require.NoError(t, err)
	require.Equal(t, GBDT{Objective: AbsoluteError, Growth: Depthwise, Trees: 7, MaxDepth: 3, MaxLeaves: 9, MaxBins: 63,
		LearningRate: 0.05, Lambda: 2.5, MinChildWeight: 3, MinSplitLoss: 0.25, Subsample: 0.5, ColsampleByTree: 0.75,
		EarlyStoppingRounds: 4, Seed: 11}, p)
	nums, strs := p.Settings()
	require.Equal(t, in, nums)
	require.Equal(t, map[string]string{"objective": AbsoluteError, "growth": Depthwise}, strs)
}

func TestDefaultsAreValid(t *testing.T) {
	d := Default()
	require.NoError(t, d.Validate())
	require.Equal(t, 100, d.Trees)
	require.Equal(t, 6, d.MaxDepth)
	require.Equal(t, MaxBins, d.MaxBins)
	p, err := From("", Leafwise, nil)
	require.NoError(t, err)
	require.Equal(t, 0, p.MaxDepth, "leafwise growth is unbounded in depth unless max_depth is given")
	require.Equal(t, 31, p.MaxLeaves)
}

func TestBadParamsAreNamed(t *testing.T) {
	for _, tc := range []struct {
		params map[string]float64
		growth string
		want   string
	}{
		{map[string]float64{"trees": 0}, "", "trees: must be at least 1"},
		{map[string]float64{"trees": 2.5}, "", "trainer.params.trees: must be a whole number"},
		{map[string]float64{"learning_rate": 0}, "", "learning_rate: must be in (0, 1]"},
		{map[string]float64{"max_bins": 300}, "", "max_bins: must be in 2..255"},
		{map[string]float64{"subsample": 1.5}, "", "subsample: must be in (0, 1]"},
		{map[string]float64{"lambda": -1}, "", "lambda: must be not negative"},
		{map[string]float64{"depth": 3}, "", "trainer.params.depth: not a gbdt parameter"},
		{map[string]float64{"max_depth": 0}, Depthwise, "depthwise growth needs max_depth >= 1"},
		{nil, "sideways", `growth: "sideways" is not depthwise or leafwise`},
	} {
		_, err := From("", tc.growth, tc.params)
		require.ErrorContains(t, err, tc.want, "%v", tc.params)
	}
	_, err := From("poisson", "", nil)
	require.ErrorContains(t, err, `objective: "poisson" is not one of squared_error, absolute_error, binary_logloss`)
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
