package evaluate

import (
	"math"
	"sort"

	"github.com/driftline/driftline/pipeline"
)

// Groups counts favorable outcomes per group of the protected attribute.
type Groups map[string]*pipeline.GroupRate

// Add counts one row of group g.
func (gs Groups) Add(g string, favorable bool) {
	gr := gs[g]
	if gr == nil {
		gr = &pipeline.GroupRate{}
		gs[g] = gr
	}
	gr.Rows++
	if favorable {
		gr.Favorable++
	}
}

// DisparateImpact is the lowest favorable rate over the highest, among groups with at least
// minRows rows; 1 when no group has a favorable outcome or fewer than two groups qualify.
func DisparateImpact(attr string, above float64, groups Groups, minRows int) *pipeline.FairnessResult {
	fr := &pipeline.FairnessResult{Attribute: attr, FavorableAbove: above, DisparateImpact: 1, Groups: map[string]pipeline.GroupRate{}}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range names {
		gr := groups[g]
		gr.Rate = float64(gr.Favorable) / float64(gr.Rows)
		fr.Groups[g] = *gr
		if gr.Rows < minRows {
			continue
		}
		if gr.Rate < lo {
			lo, fr.Lowest = gr.Rate, g
		}
		if gr.Rate > hi {
			hi, fr.Highest = gr.Rate, g
		}
	}
	if hi > 0 && !math.IsInf(lo, 1) {
		fr.DisparateImpact = lo / hi
	}
	return fr
}
