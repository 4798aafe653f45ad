package drift

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Config decides when a feature and a window have drifted. Large samples make every p-value
// tiny, so a feature drifts only when its test is significant after correction across
// features AND an effect size reaches its threshold.
type Config struct {
	Alpha       float64  `json:"alpha"`       // significance level after correction (0.05)
	Correction  string   `json:"correction"`  // bh (Benjamini-Hochberg, default), bonferroni, none
	PSI         float64  `json:"psi"`         // 0.2
	KS          float64  `json:"ks"`          // KS statistic, 0.1
	JS          float64  `json:"js"`          // Jensen-Shannon distance (base 2), 0.1
	Wasserstein float64  `json:"wasserstein"` // Wasserstein-1 in reference standard deviations, 0.1
	DriftShare  float64  `json:"drift_share"` // 0.5
	Critical    []string `json:"critical,omitempty"`
	// NewCategoryShare is the least share of the current rows that categories unseen in the
	// reference must hold to count as an effect (0.01): one unseen code in a million rows is
	// not drift.
	NewCategoryShare float64 `json:"new_category_share,omitempty"`
}

// DefaultConfig holds the documented defaults.
func DefaultConfig() Config {
	return Config{Alpha: 0.05, Correction: "bh", PSI: 0.2, KS: 0.1, JS: 0.1, Wasserstein: 0.1, DriftShare: 0.5, NewCategoryShare: 0.01}
}

// FeatureResult is one feature's comparison.
type FeatureResult struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Reference int64   `json:"reference_count"`
	Current   int64   `json:"current_count"`
	Test      string  `json:"test"` // ks (method) or chi-squared
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"pvalue"`
	PAdjusted float64 `json:"pvalue_adjusted"`
	KS        float64 `json:"ks_statistic,omitempty"`
	PSI       float64 `json:"psi"`
	JS        float64 `json:"js_distance"`
	// Wasserstein is the Wasserstein-1 distance in feature units; WassersteinStd in
	// reference standard deviations.
	Wasserstein    float64  `json:"wasserstein,omitempty"`
	WassersteinStd float64  `json:"wasserstein_std,omitempty"`
	RefMean        float64  `json:"reference_mean,omitempty"`
	CurMean        float64  `json:"current_mean,omitempty"`
	NewCategories  []string `json:"new_categories,omitempty"`
	// NewCategoryShare is the share of the current rows in NewCategories.
	NewCategoryShare float64 `json:"new_category_share,omitempty"`
	// NullShare and ReferenceNullShare are the shares of rows without a value, now and in the
	// reference (reported, not a drift test).
	NullShare          float64 `json:"null_share"`
	ReferenceNullShare float64 `json:"reference_null_share"`
	Critical           bool    `json:"critical,omitempty"`
	Drifted            bool    `json:"drifted"`
	Why                string  `json:"why"`
	// Histogram is the reference and current shares over the bins PSI and JS compared (the
	// reference-quantile bins, or the categories), for reports people look at.
	Histogram *Histogram `json:"histogram,omitempty"`
}

// Histogram is two share vectors over the same labelled bins.
type Histogram struct {
	Labels    []string  `json:"labels"`
	Reference []float64 `json:"reference"`
	Current   []float64 `json:"current"`
}

// binLabels names the bins of inner cut points: "< e0", "[e0, e1)", ..., ">= en".
func binLabels(edges []float64) []string {
	if len(edges) == 0 {
		return []string{"all"}
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	out := []string{"< " + g(edges[0])}
	for i := 1; i < len(edges); i++ {
		out = append(out, "["+g(edges[i-1])+", "+g(edges[i])+")")
	}
	return append(out, ">= "+g(edges[len(edges)-1]))
}

// Report is the drift report stored in reports/<model>/<run>/drift.json.
type Report struct {
	Config   Config          `json:"config"`
	Features []FeatureResult `json:"features"`
	Share    float64         `json:"drifted_share"`
	Score    float64         `json:"score"` // the largest PSI of any feature
	Drifted  bool            `json:"drifted"`
	Why      string          `json:"why"`
}

// Report computes every feature's statistics and the decision.
func (w *Window) Report(cfg Config) Report {
	frs := make([]FeatureResult, len(w.feats))
	for i, f := range w.feats {
		frs[i] = f.result()
	}
	return decideReport(cfg, frs)
}

// decideReport corrects the features' p-values for their number, decides each feature and
// the window.
func decideReport(cfg Config, frs []FeatureResult) Report {
	rep := Report{Config: cfg}
	ps := make([]float64, len(frs))
	for i, fr := range frs {
		fr.Critical = slices.Contains(cfg.Critical, fr.Name)
		rep.Features = append(rep.Features, fr)
		ps[i] = fr.PValue
		rep.Score = math.Max(rep.Score, fr.PSI)
	}
	adj := ps
	switch cfg.Correction {
	case "bonferroni":
		adj = Bonferroni(ps)
	case "none":
	default:
		adj = BenjaminiHochberg(ps)
	}
	var drifted, critical []string
	for i := range rep.Features {
		fr := &rep.Features[i]
		fr.PAdjusted = adj[i]
		decide(fr, cfg)
		if fr.Drifted {
			drifted = append(drifted, fr.Name)
			if fr.Critical {
				critical = append(critical, fr.Name)
			}
		}
	}
	n := len(rep.Features)
	if n > 0 {
		rep.Share = float64(len(drifted)) / float64(n)
	}
	switch {
	case len(critical) > 0:
		rep.Drifted = true
		rep.Why = fmt.Sprintf("critical feature drifted: %s (%d of %d features drifted)", strings.Join(critical, ", "), len(drifted), n)
	case n > 0 && rep.Share >= cfg.DriftShare:
		rep.Drifted = true
		rep.Why = fmt.Sprintf("%d of %d features drifted (%s): share %.2f >= %.2f", len(drifted), n, strings.Join(drifted, ", "), rep.Share, cfg.DriftShare)
	default:
		rep.Why = fmt.Sprintf("%d of %d features drifted: share %.2f < %.2f", len(drifted), n, rep.Share, cfg.DriftShare)
		if len(drifted) > 0 {
			rep.Why += " (" + strings.Join(drifted, ", ") + ")"
		}
	}
	return rep
}

func (f *windowFeature) result() FeatureResult {
	fr := FeatureResult{Name: f.ref.Name, Kind: f.ref.Kind, Reference: f.ref.Count, Current: f.mom.n}
	if n := f.mom.n + f.nulls; n > 0 {
		fr.NullShare = float64(f.nulls) / float64(n)
	}
	if n := f.ref.Count + f.ref.Nulls; n > 0 {
		fr.ReferenceNullShare = float64(f.ref.Nulls) / float64(n)
	}
	if f.mom.n == 0 {
		fr.PValue, fr.Why = 1, "no current values"
		return fr
	}
	if f.ref.Kind == Categorical {
		// The reference's categories in its order, then the new ones sorted: the histogram,
		// and every sum over it, come out the same however the counts were gathered.
		for c := range f.cats {
			if !slices.Contains(f.ref.Categories, c) {
				fr.NewCategories = append(fr.NewCategories, c)
			}
		}
		slices.Sort(fr.NewCategories)
		for _, c := range fr.NewCategories {
			fr.NewCategoryShare += float64(f.cats[c]) / float64(f.mom.n)
		}
		cats := append(slices.Clone(f.ref.Categories), fr.NewCategories...)
		ref := make([]float64, len(cats))
		copy(ref, f.ref.Shares)
		obs := make([]float64, len(cats))
		for i, c := range cats {
			obs[i] = float64(f.cats[c])
		}
		// A category the reference never saw has expected share 0: floor it so the test is
		// defined (and decisive) rather than infinite.
		floored := make([]float64, len(ref))
		for i, r := range ref {
			floored[i] = math.Max(r, 1e-6)
		}
		fr.Test = "chi-squared"
		if len(cats) > 1 {
			fr.Statistic, fr.PValue = ChiSquare(obs, floored)
		} else {
			fr.PValue = 1
		}
		cur := normalise(obs)
		fr.PSI = PSI(ref, cur)
		fr.JS = JSDistance(ref, cur)
		fr.Histogram = &Histogram{Labels: cats, Reference: ref, Current: cur}
		return fr
	}
	d := f.ks()
	r := KSTest(d, len(f.ref.Sample), int(f.mom.n))
	fr.Test = "ks-" + r.Method
	fr.Statistic, fr.KS, fr.PValue = r.D, r.D, r.P
	cur := make([]float64, len(f.bins))
	for i, c := range f.bins {
		cur[i] = float64(c)
	}
	cur = normalise(cur)
	fr.PSI = PSI(f.ref.Props, cur)
	fr.JS = JSDistance(f.ref.Props, cur)
	if len(f.ref.Props) == len(cur) && len(cur) == len(f.ref.Edges)+1 {
		fr.Histogram = &Histogram{Labels: binLabels(f.ref.Edges), Reference: f.ref.Props, Current: cur}
	}
	fr.Wasserstein = Wasserstein1(f.ref.Sample, f.sample.Sorted())
	if f.ref.Std > 0 {
		fr.WassersteinStd = fr.Wasserstein / f.ref.Std
	}
	fr.RefMean, fr.CurMean = f.ref.Mean, f.mom.mean()
	return fr
}

// decide applies the rule: significant after correction and an effect size over threshold.
func decide(fr *FeatureResult, cfg Config) {
	if fr.Current == 0 {
		return
	}
	var effects []string
	if fr.PSI >= cfg.PSI {
		effects = append(effects, fmt.Sprintf("PSI %.3f >= %.3g", fr.PSI, cfg.PSI))
	}
	if fr.JS >= cfg.JS {
		effects = append(effects, fmt.Sprintf("JS %.3f >= %.3g", fr.JS, cfg.JS))
	}
	if fr.Kind == Numeric {
		if fr.KS >= cfg.KS {
			effects = append(effects, fmt.Sprintf("KS %.3f >= %.3g", fr.KS, cfg.KS))
		}
		if fr.WassersteinStd >= cfg.Wasserstein {
			effects = append(effects, fmt.Sprintf("Wasserstein %.3f std >= %.3g", fr.WassersteinStd, cfg.Wasserstein))
		}
	}
	if len(fr.NewCategories) > 0 && fr.NewCategoryShare >= cfg.NewCategoryShare {
		effects = append(effects, fmt.Sprintf("new categories %s (%.2f%% of rows)", strings.Join(fr.NewCategories, ", "), 100*fr.NewCategoryShare))
	}
	significant := fr.PAdjusted < cfg.Alpha
	switch {
	case significant && len(effects) > 0:
		fr.Drifted = true
		fr.Why = fmt.Sprintf("%s p %.2g (adjusted %.2g) < %.3g and %s", fr.Test, fr.PValue, fr.PAdjusted, cfg.Alpha, strings.Join(effects, ", "))
	case significant:
		fr.Why = fmt.Sprintf("significant (adjusted p %.2g) but every effect size is under its threshold: PSI %.3f, JS %.3f", fr.PAdjusted, fr.PSI, fr.JS)
		if fr.Kind == Numeric {
			fr.Why += fmt.Sprintf(", KS %.3f, Wasserstein %.3f std", fr.KS, fr.WassersteinStd)
		}
	case len(effects) > 0:
		fr.Why = fmt.Sprintf("%s but not significant (adjusted p %.2g >= %.3g)", strings.Join(effects, ", "), fr.PAdjusted, cfg.Alpha)
	default:
		fr.Why = fmt.Sprintf("adjusted p %.2g, PSI %.3f: no drift", fr.PAdjusted, fr.PSI)
	}
}
