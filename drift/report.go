package drift

import (
	"fmt"
	"slices"
	"strings"
)

// Thresholds decide when a feature and a dataset have drifted.
type Thresholds struct {
	PSI        float64 `json:"psi"`
	KS         float64 `json:"ks"`
	KSPValue   float64 `json:"ks_pvalue"`
	DriftShare float64 `json:"drift_share"`
}

// FeatureResult is one feature's comparison.
type FeatureResult struct {
	Name      string  `json:"name"`
	Reference int     `json:"reference_count"`
	Current   int     `json:"current_count"`
	KS        float64 `json:"ks_statistic"`
	KSPValue  float64 `json:"ks_pvalue"`
	PSI       float64 `json:"psi"`
	RefMean   float64 `json:"reference_mean"`
	CurMean   float64 `json:"current_mean"`
	Drifted   bool    `json:"drifted"`
	Why       string  `json:"why"`
}

// Report is the drift report stored in reports/<model>/<run>/drift.json.
type Report struct {
	Thresholds Thresholds      `json:"thresholds"`
	Features   []FeatureResult `json:"features"`
	Share      float64         `json:"drifted_share"`
	Score      float64         `json:"score"` // the largest PSI of any feature
	Drifted    bool            `json:"drifted"`
	Why        string          `json:"why"`
}

// Compare compares current columns with the reference profile.
func Compare(ref Profile, names []string, cols [][]float64, th Thresholds) (Report, error) {
	rep := Report{Thresholds: th}
	var drifted []string
	for i, name := range names {
		fp, ok := ref.Feature(name)
		if !ok {
			return rep, fmt.Errorf("feature %q is not in the reference profile", name)
		}
		cur := slices.Clone(cols[i])
		slices.Sort(cur)
		d, p := KS(fp.Sample, cur)
		psi := PSI(fp.Props, fp.Edges, cur)
		var mean float64
		for _, v := range cur {
			mean += v
		}
		if len(cur) > 0 {
			mean /= float64(len(cur))
		}
		fr := FeatureResult{Name: name, Reference: fp.Count, Current: len(cur), KS: d, KSPValue: p, PSI: psi,
			RefMean: fp.Mean, CurMean: mean}
		var why []string
		if psi >= th.PSI {
			why = append(why, fmt.Sprintf("PSI %.3f >= %.3f", psi, th.PSI))
		}
		if d >= th.KS && p < th.KSPValue {
			why = append(why, fmt.Sprintf("KS %.3f >= %.3f with p %.2g < %.2g", d, th.KS, p, th.KSPValue))
		}
		fr.Drifted = len(why) > 0
		if fr.Drifted {
			fr.Why = strings.Join(why, "; ")
			drifted = append(drifted, name)
		} else {
			fr.Why = fmt.Sprintf("PSI %.3f < %.3f and KS %.3f (p %.2g) within limits", psi, th.PSI, d, p)
		}
		rep.Score = max(rep.Score, psi)
		rep.Features = append(rep.Features, fr)
	}
	if len(names) > 0 {
		rep.Share = float64(len(drifted)) / float64(len(names))
	}
	rep.Drifted = len(names) > 0 && rep.Share >= th.DriftShare
	if rep.Drifted {
		rep.Why = fmt.Sprintf("%d of %d features drifted (%s): share %.2f >= %.2f", len(drifted), len(names), strings.Join(drifted, ", "), rep.Share, th.DriftShare)
	} else {
		rep.Why = fmt.Sprintf("%d of %d features drifted: share %.2f < %.2f", len(drifted), len(names), rep.Share, th.DriftShare)
	}
	return rep, nil
}
