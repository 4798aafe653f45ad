package drift

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func gen(seed uint64, n int, mu, sigma float64, grid float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		v := mu + sigma*r.NormFloat64()
		if grid > 0 {
			v = float64(int(v*grid)) / grid
		}
		out[i] = v
	}
	return out
}

func windowOf(t *testing.T, ref Profile, name string, vals []float64) *Window {
	t.Helper()
	w := NewWindow(ref)
	i := w.Index(name)
	require.GreaterOrEqual(t, i, 0)
	for r, v := range vals {
		w.AddNumeric(i, v, uint64(r))
	}
	return w
}

// The streamed KS statistic equals the two-sample statistic of the reference sample against
// every current value, with and without ties.
func TestStreamedKSIsExact(t *testing.T) {
	for _, grid := range []float64{0, 10} {
		ref, err := NewProfile([]string{"x"}, [][]float64{gen(1, 30000, 0, 1, grid)})
		require.NoError(t, err)
		require.Len(t, ref.Features[0].Sample, SampleSize)
		cur := gen(2, 50000, 0.05, 1.1, grid)
		w := windowOf(t, ref, "x", cur)
		sorted := slices.Clone(cur)
		slices.Sort(sorted)
		want := KS2Samp(ref.Features[0].Sample, sorted)
		got := w.feats[0].ks()
		require.InDelta(t, want.D, got, 1e-15, "grid %v", grid)
		rep := w.Report(DefaultConfig())
		require.Equal(t, want.P, rep.Features[0].PValue)
		require.Equal(t, "ks-asymp", rep.Features[0].Test)
	}
}

func TestBottomKIsOrderFreeAndMerges(t *testing.T) {
	vals := gen(3, 5000, 0, 1, 0)
	a, b := NewBottomK(100, 9), NewBottomK(100, 9)
	for r, v := range vals {
		a.Add(v, uint64(r))
	}
	for r := len(vals) - 1; r >= 0; r-- {
		b.Add(vals[r], uint64(r))
	}
	require.Equal(t, a.Sorted(), b.Sorted())
	h1, h2 := NewBottomK(100, 9), NewBottomK(100, 9)
	for r, v := range vals {
		if r%2 == 0 {
			h1.Add(v, uint64(r))
		} else {
			h2.Add(v, uint64(r))
		}
	}
	h1.Merge(h2)
	require.Equal(t, a.Sorted(), h1.Sorted())
}

func TestWassersteinExactForSmallWindows(t *testing.T) {
	ref, err := NewProfile([]string{"x"}, [][]float64{gen(4, 3000, 0, 1, 0)})
	require.NoError(t, err)
	cur := gen(5, 2000, 0.5, 1, 0)
	rep := windowOf(t, ref, "x", cur).Report(DefaultConfig())
	sorted := slices.Clone(cur)
	slices.Sort(sorted)
	require.InDelta(t, Wasserstein1(ref.Features[0].Sample, sorted), rep.Features[0].Wasserstein, 1e-12)
	require.InDelta(t, 0.5, rep.Features[0].Wasserstein, 0.1)
}

func TestDecisions(t *testing.T) {
	b := NewProfileBuilder([]string{"a", "b", "c", "day"}, []string{Numeric, Numeric, Numeric, Categorical})
	ra, rb, rc := gen(6, 20000, 0, 1, 0), gen(7, 20000, 5, 2, 0), gen(8, 20000, 0, 1, 0)
	days := []string{"mon", "tue", "wed"}
	for r := range 20000 {
		b.AddNumeric(0, ra[r], uint64(r))
		b.AddNumeric(1, rb[r], uint64(r))
		b.AddNumeric(2, rc[r], uint64(r))
		b.AddCategory(3, days[r%3])
	}
	ref := b.Profile()
	run := func(cfg Config, shiftA, shiftC float64, newDay bool) Report {
		w := NewWindow(ref)
		ca, cb, cc := gen(9, 20000, shiftA, 1, 0), gen(10, 20000, 5, 2, 0), gen(11, 20000, shiftC, 1, 0)
		for r := range 20000 {
			w.AddNumeric(0, ca[r], uint64(r))
			w.AddNumeric(1, cb[r], uint64(r))
			w.AddNumeric(2, cc[r], uint64(r))
			d := days[r%3]
			if newDay && r%4 == 0 {
				d = "sun"
			}
			w.AddCategory(3, d)
		}
		return w.Report(cfg)
	}
	cfg := DefaultConfig()

	rep := run(cfg, 0, 0, false)
	require.False(t, rep.Drifted, rep.Why)
	for _, f := range rep.Features {
		require.False(t, f.Drifted, "%s: %s", f.Name, f.Why)
	}

	// A tiny but significant shift is not drift: the effect is under every threshold.
	rep = run(cfg, 0.03, 0, false)
	require.False(t, rep.Features[0].Drifted, rep.Features[0].Why)

	// Two of four features drift: share 0.5 reaches drift_share.
	rep = run(cfg, 0.8, 0.8, false)
	require.True(t, rep.Drifted, rep.Why)
	require.Equal(t, 0.5, rep.Share)
	require.Contains(t, rep.Features[0].Why, "KS")

	// One feature only: not enough, unless it is critical.
	rep = run(cfg, 0.8, 0, false)
	require.False(t, rep.Drifted, rep.Why)
	cfg.Critical = []string{"a"}
	rep = run(cfg, 0.8, 0, false)
	require.True(t, rep.Drifted)
	require.Contains(t, rep.Why, "critical feature drifted: a")

	// A category the reference never saw.
	rep = run(DefaultConfig(), 0, 0, true)
	day := rep.Features[3]
	require.Equal(t, "chi-squared", day.Test)
	require.Equal(t, []string{"sun"}, day.NewCategories)
	require.True(t, day.Drifted, day.Why)

	// Bonferroni is stricter than BH on the same window.
	bon := DefaultConfig()
	bon.Correction = "bonferroni"
	b1, b2 := run(bon, 0.05, 0, false), run(DefaultConfig(), 0.05, 0, false)
	require.GreaterOrEqual(t, b1.Features[0].PAdjusted, b2.Features[0].PAdjusted)
}

// The bucket index finds the same place as a plain binary search, for values between, on,
// below and above the points, with ties and a skewed distribution.
func TestPointIndexMatchesBinarySearch(t *testing.T) {
	points := slices.Compact(gen(21, 9000, 0, 1, 100))
	for i := range 300 {
		points = append(points, 50+float64(i)*1e-9) // a dense cluster far from the rest
	}
	slices.Sort(points)
	points = slices.Compact(points)
	edges := quantileEdges(points, Bins)
	idx := newPointIndex(points, edges)
	probe := append(gen(22, 20000, 0, 3, 0), points...)
	probe = append(probe, points[0]-1, points[len(points)-1]+1, 50+5e-10, math.Inf(1), math.Inf(-1))
	for _, v := range probe {
		want, _ := slices.BinarySearch(points, v)
		p := idx.search(points, v)
		require.Equal(t, want, p, "value %v", v)
		bin := 0
		for _, e := range edges {
			if e < v {
				bin++
			}
		}
		require.Equal(t, bin, idx.binAt(p, v, p < len(points) && points[p] == v), "bin of %v", v)
	}
}

// The sample is the k lowest priorities whatever the buffer trimming did.
func TestBottomKEqualsSortedLowestPriorities(t *testing.T) {
	vals := gen(23, 30000, 0, 1, 0)
	b := NewBottomK(1000, 5)
	type pv struct {
		p uint64
		v float64
	}
	all := make([]pv, len(vals))
	for r, v := range vals {
		b.Add(v, uint64(r))
		all[r] = pv{splitmix64(uint64(r) ^ 5), v}
	}
	slices.SortFunc(all, func(a, c pv) int { return cmp.Compare(a.p, c.p) })
	want := make([]float64, 1000)
	for i := range want {
		want[i] = all[i].v
	}
	slices.Sort(want)
	require.Equal(t, want, b.Sorted())
}

// The column loop and the row-by-row path give the same report.
func TestAddColumnsEqualsAddNumeric(t *testing.T) {
	ref, err := NewProfile([]string{"a", "b"}, [][]float64{gen(31, 20000, 0, 1, 0), gen(32, 20000, 3, 1, 10)})
	require.NoError(t, err)
	cols := [][]float64{gen(33, 30000, 0.1, 1, 0), gen(34, 30000, 3, 1.2, 10)}
	cols[0] = append(cols[0], ref.Features[0].Sample[:50]...) // values equal to reference points
	cols[1] = append(cols[1], ref.Features[1].Sample[:50]...)
	w1 := NewWindow(ref)
	w1.AddColumns(cols, 7)
	w2 := NewWindow(ref)
	for i, c := range cols {
		for r, v := range c {
			w2.AddNumeric(i, v, 7+uint64(r))
		}
	}
	require.Equal(t, w2.Report(DefaultConfig()), w1.Report(DefaultConfig()))
}

// Each feature's histogram holds the very shares PSI compared: a PSI recomputed from the
// report's histogram equals the report's PSI, the shares sum to 1, the labels name the bins
// (numeric: the reference cut points; categorical: every category, new ones included).
func TestReportHistogramIsWhatPSICompared(t *testing.T) {
	b := NewProfileBuilder([]string{"x", "day"}, []string{Numeric, Categorical})
	xs := gen(1, 5000, 0, 1, 0)
	days := []string{"mon", "tue"}
	for r := range 5000 {
		b.AddNumeric(0, xs[r], uint64(r))
		b.AddCategory(1, days[r%2])
	}
	w := NewWindow(b.Profile())
	cur := gen(2, 5000, 0.5, 1, 0)
	for r := range 5000 {
		w.AddNumeric(0, cur[r], uint64(r))
		w.AddCategory(1, []string{"mon", "tue", "sun"}[r%3])
	}
	rep := w.Report(DefaultConfig())
	for _, f := range rep.Features {
		h := f.Histogram
		require.NotNil(t, h, f.Name)
		require.Len(t, h.Reference, len(h.Labels))
		require.Len(t, h.Current, len(h.Labels))
		var sr, sc float64
		for i := range h.Labels {
			sr, sc = sr+h.Reference[i], sc+h.Current[i]
		}
		require.InDelta(t, 1, sr, 1e-9, f.Name)
		require.InDelta(t, 1, sc, 1e-9, f.Name)
		require.Equal(t, f.PSI, PSI(h.Reference, h.Current), f.Name)
	}
	require.Equal(t, []string{"mon", "tue", "sun"}, rep.Features[1].Histogram.Labels)
	require.Len(t, rep.Features[0].Histogram.Labels, Bins)
	require.Regexp(t, `^< -`, rep.Features[0].Histogram.Labels[0])
	require.Regexp(t, `^>= `, rep.Features[0].Histogram.Labels[Bins-1])
}
