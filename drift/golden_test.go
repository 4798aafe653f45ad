package drift

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleSpec regenerates the samples of drift/testdata/golden.py bit for bit: the same 64-bit
// LCG and only correctly rounded operations.
type sampleSpec struct {
	Seed  uint64  `json:"seed"`
	N     int     `json:"n"`
	Loc   float64 `json:"loc"`
	Scale float64 `json:"scale"`
	Grid  float64 `json:"grid"`
}

func (s sampleSpec) draw() []float64 {
	state := s.Seed
	out := make([]float64, s.N)
	for i := range out {
		sum := 0.0
		for range 4 {
			state = state*6364136223846793005 + 1442695040888963407
			sum += float64(state>>11) / 9007199254740992.0
		}
		v := sum*s.Scale + s.Loc
		if s.Grid != 0 {
			v = math.Floor(v*s.Grid) / s.Grid
		}
		out[i] = v
	}
	slices.Sort(out)
	return out
}

type golden struct {
	KS []struct {
		Name      string     `json:"name"`
		A         sampleSpec `json:"a"`
		B         sampleSpec `json:"b"`
		Statistic float64    `json:"statistic"`
		PValue    float64    `json:"pvalue"`
	} `json:"ks_2samp"`
	Wasserstein []struct {
		Name     string     `json:"name"`
		A        sampleSpec `json:"a"`
		B        sampleSpec `json:"b"`
		Distance float64    `json:"distance"`
	} `json:"wasserstein_distance"`
	ChiSquare []struct {
		Name      string    `json:"name"`
		Observed  []float64 `json:"observed"`
		Shares    []float64 `json:"shares"`
		Statistic float64   `json:"statistic"`
		PValue    float64   `json:"pvalue"`
	} `json:"chisquare"`
	JS []struct {
		Name     string    `json:"name"`
		P        []float64 `json:"p"`
		Q        []float64 `json:"q"`
		Distance float64   `json:"distance"`
	} `json:"jensenshannon_base2"`
	PSI []struct {
		Name string    `json:"name"`
		Ref  []float64 `json:"ref"`
		Cur  []float64 `json:"cur"`
		PSI  float64   `json:"psi"`
	} `json:"psi"`
	Multiple struct {
		P          []float64 `json:"pvalues"`
		Bonferroni []float64 `json:"bonferroni"`
		BH         []float64 `json:"benjamini_hochberg"`
	} `json:"multiple_testing"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.json")
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(raw, &g))
	return g
}

// relEq: statistics agree to 1e-9 relative.
func relEq(t *testing.T, want, got float64, what string) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(want-got), 1e-9*math.Max(math.Abs(want), 1e-300), "%s: scipy %.17g, ours %.17g", what, want, got)
}

// pEq: p-values agree to 1e-6 (absolute, and relative where p >= 1e-12).
func pEq(t *testing.T, want, got float64, what string) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(want-got), 1e-6, "%s: scipy %.17g, ours %.17g", what, want, got)
	if want >= 1e-12 {
		require.LessOrEqual(t, math.Abs(want-got), 1e-6*want, "%s (relative): scipy %.17g, ours %.17g", what, want, got)
	}
}

func TestGoldenKS(t *testing.T) {
	for _, c := range loadGolden(t).KS {
		t.Run(c.Name, func(t *testing.T) {
			a, b := c.A.draw(), c.B.draw()
			r := KS2Samp(a, b)
			relEq(t, c.Statistic, r.D, "KS statistic")
			pEq(t, c.PValue, r.P, "KS p-value ("+r.Method+")")
		})
	}
}

func TestGoldenWasserstein(t *testing.T) {
	for _, c := range loadGolden(t).Wasserstein {
		relEq(t, c.Distance, Wasserstein1(c.A.draw(), c.B.draw()), c.Name)
	}
}

func TestGoldenCategorical(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.ChiSquare {
		stat, p := ChiSquare(c.Observed, c.Shares)
		relEq(t, c.Statistic, stat, c.Name+" chi-squared")
		pEq(t, c.PValue, p, c.Name+" chi-squared p")
	}
	for _, c := range g.JS {
		relEq(t, c.Distance, JSDistance(c.P, c.Q), c.Name+" JS")
	}
	for _, c := range g.PSI {
		relEq(t, c.PSI, PSI(c.Ref, c.Cur), c.Name+" PSI")
	}
}

func TestGoldenMultipleTesting(t *testing.T) {
	m := loadGolden(t).Multiple
	for i, p := range Bonferroni(m.P) {
		relEq(t, m.Bonferroni[i], p, "bonferroni")
	}
	for i, p := range BenjaminiHochberg(m.P) {
		relEq(t, m.BH[i], p, "benjamini-hochberg")
	}
}
