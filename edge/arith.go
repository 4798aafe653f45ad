package edge

import "math"

// The arithmetic of a prediction, shared with the server's int8 variant. Every product and
// sum is converted to float64 explicitly: the Go compiler may otherwise fuse x*y+z into one
// FMA instruction on arm64, riscv64 and amd64 v3 (one rounding instead of two), and the same
// model would answer differently by a unit in the last place from one CPU to another.

// A NaN result is the one canonical NaN: CPUs make different NaN bits from the same
// operation (amd64 sets the sign of a NaN it makes, arm64 and riscv64 do not, and they carry
// an input NaN's payload differently), and a missing value reaching a linear model makes one.

// canonical replaces any NaN by math.NaN().
func canonical(v float64) float64 {
	if v != v {
		return math.NaN()
	}
	return v
}

// Finish turns a tree ensemble's integer sum of int8 leaves into its output: base + scale*sum,
// then the logistic function for a binary objective.
func Finish(base, scale float64, sum int32, logistic bool) float64 {
	m := float64(base + float64(scale*float64(sum)))
	if logistic {
		return Sigmoid(m)
	}
	return canonical(m)
}

// LinearMargin is intercept + scale * sum of w_j * (x_j - mean_j) / scale_j, in feature order.
func LinearMargin(intercept, scale float64, weights []int8, means, scales, x []float64) float64 {
	var s float64
	for j, w := range weights {
		d := float64(x[j] - means[j])
		s = float64(s + float64(float64(float64(w)*d)/scales[j]))
	}
	return canonical(float64(intercept + float64(scale*s)))
}

// Sigmoid is 1 / (1 + e^-m) with Exp.
func Sigmoid(m float64) float64 {
	return canonical(float64(1 / float64(1+Exp(-m))))
}

// Constants of Exp: ln 2 split into a high part with trailing zero bits (so k*ln2Hi is exact
// for the k that occur) and the rest, and the coefficients of the minimax polynomial for
// r*(e^r+1)/(e^r-1) on |r| <= ln2/2 (Remez; as in the classic fdlibm reduction).
const (
	ln2Hi    = 6.93147180369123816490e-01
	ln2Lo    = 1.90821492927058770002e-10
	log2e    = 1.44269504088896338700e+00
	expP1    = 1.66666666666666019037e-01
	expP2    = -2.77777777770155933842e-03
	expP3    = 6.61375632143793436117e-05
	expP4    = -1.65339022054652515390e-06
	expP5    = 4.13813679705723846039e-08
	expOver  = 7.09782712893383973096e+02
	expUnder = -7.45133219101941108420e+02
)

// Exp is e^x, within 2 ulp of math.Exp, computed the same way on every architecture
// (math.Exp uses assembly on some and not others, which may differ in the last bit).
func Exp(x float64) float64 {
	switch {
	case x != x:
		return x
	case x > expOver:
		return math.Inf(1)
	case x < expUnder:
		return 0
	case x > -3.725290298461914e-09 && x < 3.725290298461914e-09:
		return float64(1 + x)
	}
	// x = k*ln2 + r, |r| <= ln2/2; k = round(x/ln2).
	var k float64
	if t := float64(x * log2e); t < 0 {
		k = math.Ceil(float64(t - 0.5))
	} else {
		k = math.Floor(float64(t + 0.5))
	}
	hi := float64(x - float64(k*ln2Hi))
	lo := float64(k * ln2Lo)
	r := float64(hi - lo)
	t := float64(r * r)
	p := float64(expP4 + float64(t*expP5))
	p = float64(expP3 + float64(t*p))
	p = float64(expP2 + float64(t*p))
	p = float64(expP1 + float64(t*p))
	c := float64(r - float64(t*p))
	y := float64(1 - float64(float64(lo-float64(float64(r*c)/float64(2-c)))-hi))
	return math.Ldexp(y, int(k))
}
