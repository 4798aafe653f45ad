package canary

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/spec"
)

// simCanaries runs canaries of the live MAE test alone: every look (every bake of every step)
// adds perLook labelled requests answered by both models and tests all pairs since the canary
// began. Production's error on a request is e ~ N(0, 1); the candidate's is e + k*eta with
// eta ~ N(0, 1) independent, so its MAE is sqrt(1+k^2) times production's and the two errors
// correlate at 1/sqrt(1+k^2) (two models trained on the same features err on the same
// requests). It returns the share of canaries rolled back at the first look and at any look.
func simCanaries(g spec.Canary, ratio float64, canaries, perLook int, seed uint64) (first, any float64) {
	k := math.Sqrt(max(ratio*ratio-1, 0))
	rng := rand.New(rand.NewPCG(seed, 7))
	looks := Looks(g)
	c, p := make([]float64, 0, looks*perLook), make([]float64, 0, looks*perLook)
	nFirst, nAny := 0, 0
	for range canaries {
		c, p = c[:0], p[:0]
		for look := 1; look <= looks; look++ {
			for range perLook {
				e := rng.NormFloat64()
				c, p = append(c, math.Abs(e+k*rng.NormFloat64())), append(p, math.Abs(e))
			}
			if WorseMAE(c, p, g.MaxMAERegression, g.MAEAlpha).Significant {
				if look == 1 {
					nFirst++
				}
				nAny++
				break
			}
		}
	}
	return float64(nFirst) / float64(canaries), float64(nAny) / float64(canaries)
}

// The live MAE guardrail's operating characteristics on 1,000 simulated canaries with the
// demo spec's settings (examples/demand.yaml: 3 steps x 3 bakes = 9 looks, min_labels pairs
// per look, max_mae_regression 5%, alpha 0.05):
//   - false rollbacks: a candidate exactly at the tolerance (MAE 1.05x production: the worst
//     case the null allows) is rolled back at some look in at most alpha of the canaries;
//     an equally good but different model, and the same model on both routes (A/A), less;
//   - power: a candidate 10% worse is caught at the first look, on min_labels pairs, in at
//     least 90% of the canaries.
//
// docs/serving.md shows the figures this logs.
func TestLiveMAEOperatingCharacteristics(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	g := sp.Canary
	require.Equal(t, 9, Looks(g))
	const canaries = 1000
	_, boundary := simCanaries(g, 1+g.MaxMAERegression, canaries, g.MinLabels, 1)
	_, equal := simCanaries(g, 1, canaries, g.MinLabels, 2)
	_, same := simCanaries(g, 0, canaries, g.MinLabels, 3) // k = 0: identical answers
	power, powerAny := simCanaries(g, 1.10, canaries, g.MinLabels, 4)
	t.Logf("live MAE, %d canaries, %d looks of %d pairs, alpha %.2f, tolerance %.0f%%: false rollback %.3f at the tolerance (1.05x), %.3f equal MAE, %.3f same model; power against 1.10x %.3f at the first look (%d pairs), %.3f over all looks",
		canaries, Looks(g), g.MinLabels, g.MAEAlpha, 100*g.MaxMAERegression, boundary, equal, same, power, g.MinLabels, powerAny)
	require.LessOrEqual(t, boundary, g.MAEAlpha, "false rollbacks at the tolerance over all looks")
	require.LessOrEqual(t, equal, boundary)
	require.Zero(t, same, "the same model on both routes never rolls back")
	require.GreaterOrEqual(t, power, 0.9, "power against a 10%% regression at min_labels")

	// The always-valid property is what the sequential test buys: the same repeated looks
	// with a fixed-sample one-sided z-test at alpha roll back far more often at the tolerance.
	rng := rand.New(rand.NewPCG(9, 9))
	k := math.Sqrt(math.Pow(1+g.MaxMAERegression, 2) - 1)
	naive := 0
	for range canaries {
		var d []float64
		for look := 1; look <= Looks(g); look++ {
			for range g.MinLabels {
				e := rng.NormFloat64()
				d = append(d, math.Abs(e+k*rng.NormFloat64())-(1+g.MaxMAERegression)*math.Abs(e))
			}
			m, v := meanVar(d)
			if m/math.Sqrt(v/float64(len(d))) > 1.6449 {
				naive++
				break
			}
		}
	}
	t.Logf("the same looks with a fixed-sample z-test: false rollback %.3f", float64(naive)/canaries)
	require.Greater(t, float64(naive)/canaries, 1.5*g.MAEAlpha)
}

func TestMSPRT(t *testing.T) {
	// No evidence of a positive mean: nothing, however many rows.
	neg := make([]float64, 5000)
	for i := range neg {
		neg[i] = -1 + float64(i%7)/7
	}
	r := SequentialTest(neg, 0.1, 0.05)
	require.False(t, r.Significant)
	require.Less(t, r.Lambda, 1e-3)
	// A clear positive mean is found, and its p-value is 1/Lambda.
	pos := make([]float64, 500)
	for i := range pos {
		pos[i] = 0.2 + float64(i%5)/10 - 0.2
	}
	r = SequentialTest(pos, 0.1, 0.05)
	require.True(t, r.Significant)
	require.InDelta(t, 1/r.Lambda, r.PValue, 1e-12)
	// Degenerate inputs do not panic and decide nothing.
	require.False(t, SequentialTest(nil, 1, 0.05).Significant)
	require.False(t, SequentialTest([]float64{1, 2}, 0, 0.05).Significant)
	require.True(t, SequentialTest([]float64{1, 1, 1}, 1, 0.05).Significant)
	require.False(t, SequentialTest([]float64{0, 0, 0}, 1, 0.05).Significant)
	// logPhi stays finite far in the tail.
	require.False(t, math.IsInf(logPhi(-1e4), 0))
	require.InDelta(t, math.Log(0.5), logPhi(0), 1e-12)
}

// One client, one extreme label: on 2,000 paired requests where the candidate is 30% worse,
// a single label of 10,000 (both models then err by about 10,000 on that request) used to
// make the test see "not worse"; with the winsorized differences the candidate is still
// rolled back, and a label at the other extreme does not make an equal candidate look worse.
func TestOneExtremeLabelDoesNotFlipTheLiveMAEDecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	worse := func(ratio float64) (c, p []float64) {
		k := math.Sqrt(max(ratio*ratio-1, 0))
		for range 2000 {
			e := rng.NormFloat64()
			c, p = append(c, math.Abs(e+k*rng.NormFloat64())), append(p, math.Abs(e))
		}
		return c, p
	}
	c, p := worse(1.3)
	require.True(t, WorseMAE(c, p, 0.05, 0.05/9).Significant, "30% worse is caught without the extreme label")
	c[0], p[0] = 1e4-3, 1e4 // the label 10,000: the candidate answered 3 units higher
	naive := func(c, p []float64) bool {
		d := make([]float64, len(c))
		for i := range c {
			d[i] = c[i] - 1.05*p[i]
		}
		return SequentialTest(d, 0.05*mean(p), 0.05/9).Significant
	}
	require.False(t, naive(c, p), "the unclipped test is flipped by the one label (the attack)")
	require.True(t, WorseMAE(c, p, 0.05, 0.05/9).Significant, "one extreme label does not flip the decision")
	c, p = worse(1.0)
	c[0], p[0] = 1e4, 0 // a label that makes only the candidate look absurdly wrong
	require.False(t, WorseMAE(c, p, 0.05, 0.05/9).Significant, "one label does not make an equal candidate look worse")
}
