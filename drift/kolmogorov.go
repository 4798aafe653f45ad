package drift

import (
	"math"
)

// KolmogorovSF is P(D_n >= x) for the two-sided one-sample Kolmogorov-Smirnov statistic with
// n observations (the distribution scipy calls kstwo), after Simard and L'Ecuyer (2011): the
// Ruben-Gambino closed forms at the ends, 2 x the exact one-sided Smirnov tail where it is
// accurate, the Durbin matrix (Marsaglia-Tsang-Wang) for small n x^1.5, Pelz-Good otherwise.
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	nf := float64(n)
	t := nf * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) / nf * (2*t - 1)
			}
		} else {
			cdf = math.Exp(logNFactorialDivNPowN(nf) + nf*math.Log(2*t-1))
		}
		return clip01(1 - cdf)
	}
	if t >= nf-1 {
		return clip01(2 * math.Pow(1-x, nf))
	}
	if x >= 0.5 {
		return clip01(2 * SmirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		if nx2 <= 4 {
			return clip01(1 - durbinCDF(n, x))
		}
		return clip01(2 * SmirnovSF(n, x))
	}
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clip01(2 * SmirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nx2 >= 18:
		cdf = 1
	case n <= 100000 && nf*math.Pow(x, 1.5) <= 1.4:
		cdf = durbinCDF(n, x)
	default:
		cdf = pelzGoodCDF(n, x)
	}
	return clip01(1 - cdf)
}

// logNFactorialDivNPowN is log(n!/n^n) by Stirling's series.
func logNFactorialDivNPowN(n float64) float64 {
	coeffs := []float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
		-1.9175269175269175269e-3, 8.4175084175084175084e-4,
		-5.952380952380952381e-4, 7.9365079365079365079e-4,
		-2.7777777777777777778e-3, 8.3333333333333333333e-2}
	rn := 1 / n
	x := rn / n
	poly := 0.0
	for _, c := range coeffs {
		poly = poly*x + c
	}
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*poly
}

// SmirnovSF is the exact one-sided tail P(D_n^+ >= x), the Birnbaum-Tingey sum
// x * sum_{j=0}^{floor(n(1-x))} C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1), summed in log space.
func SmirnovSF(n int, x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	nf := float64(n)
	jmax := int(math.Floor(nf * (1 - x)))
	lgn, _ := math.Lgamma(nf + 1)
	logs := make([]float64, 0, jmax+1)
	top := math.Inf(-1)
	for j := 0; j <= jmax; j++ {
		jf := float64(j)
		rest := 1 - x - jf/nf
		if rest <= 0 && n-j > 0 {
			continue
		}
		lgj, _ := math.Lgamma(jf + 1)
		lgnj, _ := math.Lgamma(nf - jf + 1)
		l := lgn - lgj - lgnj + (jf-1)*math.Log(x+jf/nf)
		if n-j > 0 {
			l += (nf - jf) * math.Log(rest)
		}
		logs = append(logs, l)
		top = math.Max(top, l)
	}
	var s float64
	for _, l := range logs {
		s += math.Exp(l - top)
	}
	return x * s * math.Exp(top)
}

// durbinCDF is P(D_n < x) by the Durbin matrix method (Marsaglia, Tsang and Wang 2003).
func durbinCDF(n int, d float64) float64 {
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	H := make([]float64, m*m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] = (1 - math.Pow(h, float64(j))) * fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H[r*m+i] = w[r-i+1]
		}
	}
	for r := 0; r < m; r++ {
		H[r*m] = v[r]
	}
	for c := 0; c < m; c++ {
		H[(m-1)*m+c] = v[m-1-c]
	}
	pw := make([]float64, m*m)
	for i := 0; i < m; i++ {
		pw[i*m+i] = 1
	}
	const e128 = 128
	ep := math.Ldexp(1, e128)
	em := math.Ldexp(1, -e128)
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			pw = matmul(pw, H, m)
			expnt += hexpnt
		}
		H = matmul(H, H, m)
		hexpnt *= 2
		if math.Abs(H[(k-1)*m+k-1]) > ep {
			for i := range H {
				H[i] /= ep
			}
			hexpnt += e128
		}
	}
	p := pw[(k-1)*m+k-1]
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em {
			p *= ep
			expnt -= e128
		}
	}
	return math.Ldexp(p, expnt)
}

func matmul(a, b []float64, m int) []float64 {
	out := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for k := 0; k < m; k++ {
			aik := a[i*m+k]
			if aik == 0 {
				continue
			}
			for j := 0; j < m; j++ {
				out[i*m+j] += aik * b[k*m+j]
			}
		}
	}
	return out
}

// pelzGoodCDF is the Pelz-Good (1976) approximation of P(D_n <= x).
func pelzGoodCDF(n int, x float64) float64 {
	z := math.Sqrt(float64(n)) * x
	z2, z3, z4, z6 := z*z, z*z*z, z*z*z*z, math.Pow(z, 6)
	qlog := -math.Pi * math.Pi / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	pi2, pi4, pi6 := math.Pi*math.Pi, math.Pow(math.Pi, 4), math.Pow(math.Pi, 6)
	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, m*m*m*m, math.Pow(m, 6)
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	den := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / den[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	var k2extra, k3extra float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k > 0; k-- {
		kf := float64(k)
		qp := math.Pow(q, kf*kf)
		k2extra += kf * kf * qp
		kspi := math.Pi * kf
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * kf * kf * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	var s float64
	for i := range K {
		s += K[i] / math.Pow(float64(n), float64(i)/2)
	}
	return s
}
