package monitor

import (
	"math"
	"slices"
	"sort"

	"github.com/driftline/driftline/model"
)

// ExplainRows is how many of a window's requests are explained (TreeSHAP costs about 0.2 ms a
// row): an even spread over the window.
const ExplainRows = 500

// ExplanationDrift compares the window's mean |SHAP| per feature with the version's reference
// importance (the holdout's, from evaluation): the ranking by nDCG (as SageMaker Clarify's
// feature attribution drift: 1 = the same order; Clarify alerts under 0.90) and the shift of
// each feature's attribution.
type ExplanationDrift struct {
	Rows       int                `json:"rows"`
	NDCG       float64            `json:"ndcg"`
	Live       map[string]float64 `json:"live"`
	Reference  map[string]float64 `json:"reference"`
	Shift      map[string]float64 `json:"shift"` // live minus reference
	Drifted    bool               `json:"drifted"`
	Threshold  float64            `json:"threshold"`
	TopChanged bool               `json:"top_feature_changed"`
}

// NDCGThreshold: explanation drift below it.
const NDCGThreshold = 0.9

// explanationDrift explains up to ExplainRows of the parsed requests with the model.
func explanationDrift(m *model.Model, ref map[string]float64, f requestFeatures, n int) *ExplanationDrift {
	var rows []int
	for k := 0; k < n; k++ {
		if f.parsed[k] {
			rows = append(rows, k)
		}
	}
	if len(rows) == 0 || len(ref) == 0 {
		return nil
	}
	step := max(1, len(rows)/ExplainRows)
	src := make([][]float64, len(m.Features))
	for j, name := range m.Features {
		if i := slices.Index(f.names, name); i >= 0 {
			src[j] = f.cols[i]
		}
	}
	sum := make([]float64, len(m.Features))
	x := make([]float64, len(m.Features))
	explained := 0
	for i := 0; i < len(rows) && explained < ExplainRows; i += step {
		k := rows[i]
		for j := range x {
			x[j] = math.NaN()
			if src[j] != nil {
				x[j] = src[j][k]
			}
		}
		_, phi := m.Explain(x)
		for j := range sum {
			sum[j] += math.Abs(phi[j])
		}
		explained++
	}
	out := &ExplanationDrift{Rows: explained, Live: map[string]float64{}, Reference: map[string]float64{}, Shift: map[string]float64{},
		Threshold: NDCGThreshold}
	for j, name := range m.Features {
		live := sum[j] / float64(explained)
		out.Live[name], out.Reference[name] = live, ref[name]
		out.Shift[name] = live - ref[name]
	}
	out.NDCG = ndcg(out.Reference, out.Live)
	out.Drifted = out.NDCG < NDCGThreshold
	out.TopChanged = top(out.Reference) != top(out.Live)
	return out
}

// ndcg scores the live ranking of features with the reference attributions as relevance.
func ndcg(ref, live map[string]float64) float64 {
	order := func(m map[string]float64) []string {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Slice(names, func(a, b int) bool {
			if m[names[a]] != m[names[b]] {
				return m[names[a]] > m[names[b]]
			}
			return names[a] < names[b]
		})
		return names
	}
	dcg := func(ranked []string) float64 {
		s := 0.0
		for i, name := range ranked {
			s += ref[name] / math.Log2(float64(i)+2)
		}
		return s
	}
	ideal := dcg(order(ref))
	if ideal == 0 {
		return 1
	}
	return dcg(order(live)) / ideal
}

func top(m map[string]float64) string {
	best, name := math.Inf(-1), ""
	for k, v := range m {
		if v > best || v == best && k < name {
			best, name = v, k
		}
	}
	return name
}
