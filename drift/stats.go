package drift

import (
	"math"
	"slices"
	"sort"
)

// PSI is the Population Stability Index of two share vectors over the same bins; empty bins
// are floored at 1e-4 so the logarithm stays finite.
func PSI(ref, cur []float64) float64 {
	const floor = 1e-4
	var psi float64
	for i := range ref {
		r, c := math.Max(ref[i], floor), math.Max(cur[i], floor)
		psi += (c - r) * math.Log(c/r)
	}
	return psi
}

// ChiSquare is Pearson's goodness-of-fit test of observed counts against expected shares
// (scaled to the observed total), with len-1 degrees of freedom, as
// scipy.stats.chisquare(obs, shares*sum(obs)).
func ChiSquare(obs []float64, shares []float64) (stat, p float64) {
	var total, stotal float64
	for i := range obs {
		total += obs[i]
		stotal += shares[i]
	}
	for i := range obs {
		e := shares[i] / stotal * total
		stat += (obs[i] - e) * (obs[i] - e) / e
	}
	return stat, ChiSquareSF(stat, float64(len(obs)-1))
}

// ChiSquareSF is the upper tail of the chi-squared distribution with k degrees of freedom.
func ChiSquareSF(x, k float64) float64 {
	if k <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(k/2, x/2)
}

// gammaQ is the regularised upper incomplete gamma function Q(a, x): a power series for
// x < a+1, Lentz's continued fraction otherwise.
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 10000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-17 {
				break
			}
		}
		return 1 - sum*math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-17 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

// JSDistance is the Jensen-Shannon distance (base 2, so in [0, 1]) of two count or share
// vectors, each normalised to sum 1, as scipy.spatial.distance.jensenshannon(p, q, base=2).
func JSDistance(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	var js float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		if pi > 0 {
			js += pi * math.Log(pi/m)
		}
		if qi > 0 {
			js += qi * math.Log(qi/m)
		}
	}
	js /= 2 * math.Ln2
	return math.Sqrt(math.Max(js, 0))
}

// Wasserstein1 is the first Wasserstein distance of two sorted samples: the area between their
// empirical CDFs, as scipy.stats.wasserstein_distance(u, v).
func Wasserstein1(u, v []float64) float64 {
	if len(u) == 0 || len(v) == 0 {
		return math.NaN()
	}
	all := make([]float64, 0, len(u)+len(v))
	all = append(append(all, u...), v...)
	slices.Sort(all)
	var w float64
	iu, iv := 0, 0
	nu, nv := float64(len(u)), float64(len(v))
	for k := 0; k < len(all)-1; k++ {
		x := all[k]
		for iu < len(u) && u[iu] <= x {
			iu++
		}
		for iv < len(v) && v[iv] <= x {
			iv++
		}
		w += math.Abs(float64(iu)/nu-float64(iv)/nv) * (all[k+1] - x)
	}
	return w
}

// Bonferroni multiplies each p-value by their count, capped at 1.
func Bonferroni(ps []float64) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = math.Min(1, p*float64(len(ps)))
	}
	return out
}

// BenjaminiHochberg returns the BH-adjusted p-values (false discovery rate), in input order:
// adj_(i) = min_{j>=i} p_(j) m / j over the ascending order, capped at 1.
func BenjaminiHochberg(ps []float64) []float64 {
	m := len(ps)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ps[idx[a]] < ps[idx[b]] })
	out := make([]float64, m)
	running := 1.0
	for r := m - 1; r >= 0; r-- {
		i := idx[r]
		running = math.Min(running, ps[i]*float64(m)/float64(r+1))
		out[i] = math.Min(1, running)
	}
	return out
}
