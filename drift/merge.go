package drift

import "fmt"

// Merge adds o, a window over other rows against the same reference profile (another
// partition of the window), to w. The counts against the reference sample (the KS placement,
// the histogram bins, the categories, the nulls) are sums and the row sample keeps the k
// smallest priorities of both, so every statistic and decision of the report equals one
// pass's, in any merge order, and so do the current mean and standard deviation (exact sums).
func (w *Window) Merge(o *Window) error {
	if len(o.feats) != len(w.feats) {
		return fmt.Errorf("merge drift windows: %d features and %d", len(w.feats), len(o.feats))
	}
	for i, f := range w.feats {
		g := o.feats[i]
		if g.ref.Name != f.ref.Name || len(g.between) != len(f.between) || len(g.bins) != len(f.bins) {
			return fmt.Errorf("merge drift windows: feature %d is %q and %q, or against another reference", i, f.ref.Name, g.ref.Name)
		}
		addCounts(f.between, g.between)
		addCounts(f.at, g.at)
		addCounts(f.bins, g.bins)
		for c, n := range g.cats {
			f.cats[c] += n
		}
		f.nulls += g.nulls
		f.mom.merge(&g.mom)
		if f.sample != nil && g.sample != nil {
			f.sample.Merge(g.sample)
		}
	}
	return nil
}

func addCounts(dst, src []int64) {
	for i, n := range src {
		dst[i] += n
	}
}

// merge adds o's values: exact sums, so the result does not depend on how values were split.
func (m *moments) merge(o *moments) {
	m.n += o.n
	m.Moments.Merge(&o.Moments)
}

// Merge adds o, a builder of the same features over other rows, to b. The counts, the
// categories and the row sample (so the sample, its quantile edges and shares) equal one
// builder's over every row, in any merge order, and so do the mean and standard deviation
// (exact sums).
func (b *ProfileBuilder) Merge(o *ProfileBuilder) error {
	if len(o.names) != len(b.names) {
		return fmt.Errorf("merge profiles: %d features and %d", len(b.names), len(o.names))
	}
	for i, n := range b.names {
		if o.names[i] != n || o.kinds[i] != b.kinds[i] {
			return fmt.Errorf("merge profiles: feature %d is %s %q and %s %q", i, b.kinds[i], n, o.kinds[i], o.names[i])
		}
		b.mom[i].merge(&o.mom[i])
		b.nulls[i] += o.nulls[i]
		for c, k := range o.cats[i] {
			b.cats[i][c] += k
		}
		if b.samples[i] != nil {
			b.samples[i].Merge(o.samples[i])
		}
	}
	return nil
}
