package drift

import (
	"math"
)

// KSResult is a two-sample Kolmogorov-Smirnov test result.
type KSResult struct {
	D      float64 `json:"statistic"`
	P      float64 `json:"pvalue"`
	Method string  `json:"method"` // exact or asymp
}

// maxExactN is where the exact two-sample distribution gives way to the asymptotic one, as
// in scipy.stats.ks_2samp(method="auto").
const maxExactN = 10000

// KS2Samp is the two-sided two-sample KS test of sorted samples a and b.
func KS2Samp(a, b []float64) KSResult {
	return KSTest(ksStatistic(a, b), len(a), len(b))
}

// ksStatistic is sup |F_a - F_b| over all sample points; a and b are sorted.
func ksStatistic(a, b []float64) float64 {
	n, m := len(a), len(b)
	i, j := 0, 0
	var d float64
	for i < n || j < m {
		var v float64
		switch {
		case i == n:
			v = b[j]
		case j == m:
			v = a[i]
		default:
			v = min(a[i], b[j])
		}
		for i < n && a[i] == v {
			i++
		}
		for j < m && b[j] == v {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(n)-float64(j)/float64(m)))
	}
	return d
}

// KSTest turns a KS statistic of samples of sizes n1 and n2 into the two-sided p-value: the
// exact distribution when both samples have at most 10,000 values (with D rounded to the
// lattice, as the exact test does), the Kolmogorov distribution at round(n1 n2/(n1+n2))
// otherwise or when the exact computation fails.
func KSTest(d float64, n1, n2 int) KSResult {
	if n1 == 0 || n2 == 0 {
		return KSResult{D: d, P: 1, Method: "empty"}
	}
	if max(n1, n2) <= maxExactN {
		if dd, p, ok := ksExact(n1, n2, d); ok {
			return KSResult{D: dd, P: clip01(p), Method: "exact"}
		}
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := math.Round(m * n / (m + n))
	return KSResult{D: d, P: clip01(KolmogorovSF(int(en), d)), Method: "asymp"}
}

func clip01(p float64) float64 { return math.Min(1, math.Max(0, p)) }

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksExact is the exact two-sided p-value P(D >= d) by lattice-path counting (Hodges), with the
// 1-p recursion of Viehmann (2021) for unequal sizes.
func ksExact(n1, n2 int, d float64) (float64, float64, bool) {
	g := gcd(n1, n2)
	lcm := float64(n1/g) * float64(n2)
	h := int(math.Round(d * lcm))
	d = float64(h) / lcm
	if h == 0 {
		return d, 1, true
	}
	var p float64
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 || p > 1 {
		return d, p, false
	}
	return d, p, true
}

// probOutsideSquare is P(D_{n,n} >= h/n) with a Horner-like alternating sum.
func probOutsideSquare(n, h int) float64 {
	var p float64
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1 - p)
	}
	return 2 * p
}

// outerProbInside is the share of lattice paths from (0,0) to (m,n) that leave the band
// |x/m - y/n| < h/lcm, computed as 1-p directly column by column on a sliding window.
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(int(math.Ceil(float64(h)/float64(mg))), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	a := make([]float64, lenA)
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(int(math.Floor(float64(ng*i-h)/float64(mg)))+1, 0)
		minj = min(minj, n)
		maxj = min(int(math.Ceil(float64(ng*i+h)/float64(mg))), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (a[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			a[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen); k++ {
				a[k] = 1
			}
		}
	}
	return a[maxj-minj-1]
}
