package drift

import (
	"math"
	"slices"
)

// KS is the two-sample Kolmogorov-Smirnov statistic of two sorted samples and its asymptotic
// two-sided p-value (Kolmogorov distribution at sqrt(n*m/(n+m)) * D).
func KS(a, b []float64) (d, p float64) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return 0, 1
	}
	i, j := 0, 0
	for i < n && j < m {
		v := min(a[i], b[j])
		for i < n && a[i] == v {
			i++
		}
		for j < m && b[j] == v {
			j++
		}
		if diff := math.Abs(float64(i)/float64(n) - float64(j)/float64(m)); diff > d {
			d = diff
		}
	}
	en := math.Sqrt(float64(n) * float64(m) / float64(n+m))
	return d, kolmogorovSF(en * d)
}

// kolmogorovSF is P(K > x) for the Kolmogorov distribution.
func kolmogorovSF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x < 1.18 {
		// Small-x form converges faster: P(K <= x) = sqrt(2pi)/x * sum exp(-(2k-1)^2 pi^2 / (8x^2)).
		var s float64
		for k := 1; k <= 20; k++ {
			s += math.Exp(-float64((2*k-1)*(2*k-1)) * math.Pi * math.Pi / (8 * x * x))
		}
		return math.Max(0, 1-math.Sqrt(2*math.Pi)/x*s)
	}
	var s float64
	for k := 1; k <= 100; k++ {
		term := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 0 {
			s -= term
		} else {
			s += term
		}
		if term < 1e-16 {
			break
		}
	}
	return math.Min(1, math.Max(0, 2*s))
}

// PSI is the Population Stability Index of current values against reference bin shares.
// Empty bins are floored at 1e-4 so the logarithm stays finite.
func PSI(refProps, edges, current []float64) float64 {
	sorted := slices.Clone(current)
	slices.Sort(sorted)
	cur := binShares(sorted, edges)
	const floor = 1e-4
	var psi float64
	for i := range refProps {
		r, c := math.Max(refProps[i], floor), math.Max(cur[i], floor)
		psi += (c - r) * math.Log(c/r)
	}
	return psi
}
