package canary

import (
	"math"
	"math/rand/v2"
	"slices"
)

// MSPRT is the one-sided mixture sequential probability ratio test of a mean (Robbins 1970;
// Johari et al., "Always valid inference", 2017) for H0: mean <= 0 against mean > 0, on
// independent differences with a plug-in variance. The likelihood ratio of a normal mean
// theta is mixed over a half-normal prior of scale tau on theta > 0:
//
//	Lambda_n = 2 (1 + n tau^2/s^2)^(-1/2) exp(b^2/(2a)) Phi(b/sqrt(a)),
//	a = n/s^2 + 1/tau^2, b = n mean/s^2.
//
// Lambda is a non-negative supermartingale under every mean <= 0, so by Ville's inequality
// the chance that it ever reaches 1/alpha, at any number of looks taken at any times, is at
// most alpha: the test may be repeated at every bake of every canary step with no correction.
// PValue is the always-valid p-value min(1, 1/Lambda) (decision 0015).
type MSPRT struct {
	N           int
	Mean, Sd    float64
	Tau         float64
	Lambda      float64 // may be +Inf; LogLambda is finite (capped), for evidence
	LogLambda   float64
	PValue      float64
	Significant bool
}

// SequentialTest runs the test on x at significance alpha with mixture scale tau (> 0; in units of
// x: the size of effect the test is tuned to find).
func SequentialTest(x []float64, tau, alpha float64) MSPRT {
	r := MSPRT{N: len(x), Tau: tau, Lambda: 0, LogLambda: -math.MaxFloat64, PValue: 1}
	if len(x) < 2 || !(tau > 0) {
		return r
	}
	mean, v := meanVar(x)
	r.Mean, r.Sd = mean, math.Sqrt(v)
	if v == 0 { // every difference equal: decided by its sign
		if mean > 0 {
			r.Lambda, r.LogLambda, r.PValue, r.Significant = math.Inf(1), math.MaxFloat64, 0, true
		}
		return r
	}
	n := float64(len(x))
	a := n/v + 1/(tau*tau)
	b := n * mean / v
	// log Lambda, with log Phi computed stably for very negative arguments.
	z := b / math.Sqrt(a)
	logL := math.Log(2) - 0.5*math.Log1p(n*tau*tau/v) + b*b/(2*a) + logPhi(z)
	r.Lambda, r.LogLambda = math.Exp(logL), logL
	r.PValue = math.Min(1, math.Exp(-logL))
	r.Significant = logL >= math.Log(1/alpha)
	return r
}

// logPhi is log of the standard normal distribution function.
func logPhi(z float64) float64 {
	if z > -30 {
		return math.Log(0.5 * math.Erfc(-z/math.Sqrt2))
	}
	// Mills ratio asymptote: Phi(z) ~ phi(z)/|z| for z -> -inf.
	return -0.5*z*z - math.Log(-z) - 0.5*math.Log(2*math.Pi)
}

// QuantileSamples is the fewest observations for which the largest one is an upper bound of
// the q-quantile with confidence conf, whatever the distribution: 1 - q^n >= conf. For the
// 99th percentile at 95% that is 299; below it a sample "p99" is mostly the maximum of a few.
func QuantileSamples(q, conf float64) int {
	return int(math.Ceil(math.Log(1-conf) / math.Log(q)))
}

// diRows are the requests a disparate-impact comparison resamples: the request's group and
// whether each model's answer to it was favorable.
type diRows struct {
	group      []int
	cand, prod []bool
	groups     int
}

// di is the disparate impact (lowest favorable rate over highest, among groups with at least
// minRows rows; 1 when undefined) of one model's answers over the rows idx.
func (d *diRows) di(idx []int, cand bool, minRows int, rows, fav []int) float64 {
	clear(rows)
	clear(fav)
	for _, i := range idx {
		g := d.group[i]
		rows[g]++
		f := d.prod[i]
		if cand {
			f = d.cand[i]
		}
		if f {
			fav[g]++
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for g := range rows {
		if rows[g] < minRows || rows[g] == 0 {
			continue
		}
		r := float64(fav[g]) / float64(rows[g])
		lo, hi = math.Min(lo, r), math.Max(hi, r)
	}
	if hi > 0 && !math.IsInf(lo, 1) {
		return lo / hi
	}
	return 1
}

// bootstrapDelta is a percentile bootstrap of the candidate's disparate impact minus
// production's on the same requests (each resample draws requests, both models' answers to
// them travel together). It returns the lower and upper bounds of the central 1-2*tail
// interval. The generator is seeded, so the same evidence gives the same interval.
func (d *diRows) bootstrapDelta(minRows, resamples int, tail float64) (lo, hi float64) {
	n := len(d.group)
	rng := rand.New(rand.NewPCG(0x5eed, uint64(n)))
	idx := make([]int, n)
	rows, fav := make([]int, d.groups), make([]int, d.groups)
	deltas := make([]float64, resamples)
	for b := range deltas {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		deltas[b] = d.di(idx, true, minRows, rows, fav) - d.di(idx, false, minRows, rows, fav)
	}
	return quantile(deltas, tail), quantile(deltas, 1-tail)
}

// quantile sorts x and returns its q-quantile (nearest rank).
func quantile(x []float64, q float64) float64 {
	s := append([]float64(nil), x...)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
