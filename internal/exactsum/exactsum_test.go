package exactsum

import (
	"math"
	"math/big"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// values draws floats across the whole range: ordinary data, huge and tiny magnitudes,
// subnormals, both signs, exact cancellations.
func values(rng *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		switch rng.Intn(6) {
		case 0:
			out[i] = rng.NormFloat64()*1e6 + 1e9
		case 1:
			out[i] = math.Ldexp(rng.Float64(), rng.Intn(2000)-1000)
		case 2:
			out[i] = math.Float64frombits(rng.Uint64() & (1<<52 - 1)) // subnormal
		case 3:
			out[i] = math.Ldexp(1+rng.Float64(), 1022) * (float64(rng.Intn(3)+1) / 3) // near the largest
		case 4:
			out[i] = -out[rng.Intn(i+1)]
		default:
			out[i] = rng.NormFloat64()
		}
		if rng.Intn(2) == 0 {
			out[i] = -out[i]
		}
	}
	return out
}

// oracle sums exactly in big.Float (precision beyond any float64 sum) and squares too.
func oracle(vs []float64) (sum, sq *big.Float) {
	sum, sq = new(big.Float).SetPrec(10000), new(big.Float).SetPrec(10000)
	for _, v := range vs {
		x := new(big.Float).SetPrec(10000).SetFloat64(v)
		sum.Add(sum, x)
		sq.Add(sq, x.Mul(x, x))
	}
	return sum, sq
}

func toFloat(t *testing.T, s *Sum) *big.Float {
	x, nf := s.Int()
	require.Zero(t, nf)
	f := new(big.Float).SetPrec(10000).SetInt(x)
	return f.SetMantExp(f, unitExp)
}

// A sum split into parts and merged in any order equals one sum, and both are exact.
func TestPartsMergeToTheExactSum(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for trial := 0; trial < 50; trial++ {
		vs := values(rng, 1+rng.Intn(3000))
		var one, oneSq Sum
		for _, v := range vs {
			one.Add(v)
			oneSq.AddSquare(v)
		}
		wantSum, wantSq := oracle(vs)
		require.Zero(t, toFloat(t, &one).Cmp(wantSum), "trial %d: the sum is not exact", trial)
		require.Zero(t, toFloat(t, &oneSq).Cmp(wantSq), "trial %d: the sum of squares is not exact", trial)
		want, _ := wantSum.Float64()
		require.Equal(t, math.Float64bits(want), math.Float64bits(one.Float64()), "trial %d: rounded once", trial)

		// random cuts, merged in a random order
		parts := make([]Sum, 1+rng.Intn(20))
		sqs := make([]Sum, len(parts))
		for _, v := range vs {
			k := rng.Intn(len(parts))
			parts[k].Add(v)
			sqs[k].AddSquare(v)
		}
		var merged, mergedSq Sum
		for _, k := range rng.Perm(len(parts)) {
			st := parts[k].State() // through the encoding, as partitions do
			p, err := FromState(st)
			require.NoError(t, err)
			merged.Merge(&p)
			mergedSq.Merge(&sqs[k])
		}
		n := int64(len(vs))
		require.Equal(t, math.Float64bits(one.Quo(n)), math.Float64bits(merged.Quo(n)), "trial %d", trial)
		require.Equal(t, math.Float64bits(Variance(&one, &oneSq, n)), math.Float64bits(Variance(&merged, &mergedSq, n)), "trial %d", trial)
		a, _ := one.Int()
		b, _ := merged.Int()
		require.Zero(t, a.Cmp(b), "trial %d", trial)
	}
}

// Moments, which takes both sums in one call, gives the sums of Add and AddSquare over random
// parts merged in any order; a slot of squares is moved out before it overflows.
func TestMomentsEqualTheTwoSums(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for trial := 0; trial < 40; trial++ {
		vs := values(rng, 1+rng.Intn(3000))
		if trial%3 == 0 { // one band: the slots' own path
			for i := range vs {
				vs[i] = 50 + 10*rng.NormFloat64()
			}
		}
		if trial%7 == 0 {
			vs[rng.Intn(len(vs))] = math.Inf(-1)
		}
		var s, sq Sum
		for _, v := range vs {
			s.Add(v)
			sq.AddSquare(v)
		}
		parts := make([]Moments, 1+rng.Intn(5))
		for _, v := range vs {
			parts[rng.Intn(len(parts))].Add(v)
		}
		var m Moments
		for _, i := range rng.Perm(len(parts)) {
			m.Merge(&parts[i])
		}
		gs, gq := m.Sums()
		require.Equal(t, s.State(), gs.State(), "trial %d", trial)
		require.Equal(t, sq.State(), gq.State(), "trial %d", trial)
	}
	v := math.Ldexp(math.Float64frombits(0x3fffffffffffffff), 30)
	var m Moments
	var sq Sum
	for i := 0; i < squareFlush+3; i++ {
		m.Add(v)
	}
	for i := 0; i < squareFlush+3; i++ {
		sq.AddSquare(v)
	}
	_, gq := m.Sums()
	require.Equal(t, sq.State(), gq.State())
}

// The mean and variance are the exact ones rounded once, even where the naive formula cancels
// every digit (a large mean, a small spread).
func TestMeanAndVarianceAreCorrectlyRounded(t *testing.T) {
	vs := []float64{1e15 + 1, 1e15 + 2, 1e15 + 3, 1e15 + 4}
	var s, sq Sum
	for _, v := range vs {
		s.Add(v)
		sq.AddSquare(v)
	}
	require.Equal(t, 1e15+2.5, s.Quo(4))
	require.Equal(t, 1.25, Variance(&s, &sq, 4))

	rng := rand.New(rand.NewSource(3))
	vs = make([]float64, 1000)
	for i := range vs {
		vs[i] = 1e9 + rng.NormFloat64()
	}
	s, sq = Sum{}, Sum{}
	for _, v := range vs {
		s.Add(v)
		sq.AddSquare(v)
	}
	// exact: (n*sq - s^2)/n^2 in rationals
	rs, rq := new(big.Rat), new(big.Rat)
	for _, v := range vs {
		x := new(big.Rat).SetFloat64(v)
		rs.Add(rs, x)
		rq.Add(rq, x.Mul(x, x))
	}
	n := big.NewRat(int64(len(vs)), 1)
	want := new(big.Rat).Sub(new(big.Rat).Mul(rq, n), new(big.Rat).Mul(rs, rs))
	want.Quo(want, new(big.Rat).Mul(n, n))
	wf, _ := want.Float64()
	require.Equal(t, wf, Variance(&s, &sq, int64(len(vs))))
	mean, _ := new(big.Rat).Quo(rs, n).Float64()
	require.Equal(t, mean, s.Quo(int64(len(vs))))
}

// Carries are propagated before an int64 digit can overflow: digits at their largest, slots
// of the widest mantissas flushed into them across the propagation point.
func TestCarriesNeverOverflow(t *testing.T) {
	var s Sum
	var want []float64
	d := s.digitsOf()
	for i := range d[:digits-1] {
		d[i] = digitMask
	}
	s.pending = normEvery - 3
	base, _ := s.Int()
	for i := 0; i < 12; i++ {
		v := math.Ldexp(math.Float64frombits(0x3fffffffffffffff), 40*i-200) // every mantissa bit set, a new band each
		s.Add(v)
		s.AddSquare(v)
		want = append(want, v)
	}
	require.Less(t, s.pending, int32(normEvery), "propagated")
	got, _ := s.Int()
	ws, wq := oracle(want)
	ws.Add(ws, wq)
	wi, _ := ws.SetMantExp(ws, -unitExp).Int(nil)
	require.Zero(t, got.Sub(got, base).Cmp(wi))
}

// A slot of squares is moved to the digits before its 192 bits could overflow: 2^22 + 3
// squares of the band's largest values.
func TestASlotOfSquaresNeverOverflows(t *testing.T) {
	v := math.Ldexp(math.Float64frombits(0x3fffffffffffffff), 30) // the top exponent of its band
	var s Sum
	n := squareFlush + 3
	for i := 0; i < n; i++ {
		s.AddSquare(v)
	}
	x := new(big.Float).SetPrec(10000).SetFloat64(v)
	x.Mul(x, x).Mul(x, new(big.Float).SetInt64(int64(n)))
	wi, _ := x.SetMantExp(x, -unitExp).Int(nil)
	got, _ := s.Int()
	require.Zero(t, got.Cmp(wi))
}

func TestInfinitiesAndEmptySums(t *testing.T) {
	var s, sq Sum
	require.Equal(t, 0.0, s.Quo(0))
	require.Equal(t, 0.0, s.Float64())
	require.Equal(t, 0.0, Variance(&s, &sq, 0))
	s.Add(math.Inf(1))
	s.Add(1)
	require.True(t, math.IsInf(s.Quo(2), 1))
	s.Add(math.Inf(-1))
	require.True(t, math.IsNaN(s.Float64()))
	st := s.State()
	r, err := FromState(st)
	require.NoError(t, err)
	require.True(t, math.IsNaN(r.Float64()))
	var n Sum
	n.Add(math.NaN())
	require.True(t, math.IsNaN(n.Float64()), "a NaN makes the sum NaN")
}

func TestAStateTooLargeIsRefused(t *testing.T) {
	_, err := FromState(State{Int: []byte{1}, Shift: digits * digitBits})
	require.ErrorContains(t, err, "more than a sum holds")
	_, err = FromState(State{Int: make([]byte, 600), Shift: 0})
	require.NoError(t, err, "zero bytes are a zero")
	big := make([]byte, 600)
	big[0] = 1
	_, err = FromState(State{Int: big})
	require.ErrorContains(t, err, "more than a sum holds")
	_, err = FromState(State{Int: []byte{1}, Shift: math.MaxUint})
	require.Error(t, err)
}

// BenchmarkSpread adds values spread over every exponent (a slot taken over at most values).
func BenchmarkSpread(b *testing.B) {
	vs := values(rand.New(rand.NewSource(1)), 4096)
	for name, add := range map[string]func(*Sum, float64){"add": (*Sum).Add, "square": (*Sum).AddSquare} {
		b.Run(name, func(b *testing.B) {
			var s Sum
			for i := 0; i < b.N; i++ {
				add(&s, vs[i&4095])
			}
		})
	}
}

func BenchmarkFloatAdd(b *testing.B) {
	vs := values(rand.New(rand.NewSource(1)), 4096)
	var s, q float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := vs[i&4095]
		s += v
		q += v * v
	}
	_ = s + q
}

func BenchmarkAddData(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	vs := make([]float64, 4096)
	for i := range vs {
		vs[i] = 50 + 10*rng.NormFloat64()
	}
	var s, q Sum
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Add(vs[i&4095])
		q.AddSquare(vs[i&4095])
	}
}

func BenchmarkMomentsData(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	vs := make([]float64, 4096)
	for i := range vs {
		vs[i] = 50 + 10*rng.NormFloat64()
	}
	var m Moments
	b.ResetTimer()
	defer m.Sums()
	for i := 0; i < b.N; i++ {
		m.Add(vs[i&4095])
	}
}
