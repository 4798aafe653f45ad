// Package exactsum adds float64 values, and their squares, without rounding: the sum is a
// fixed-point integer wide enough for every finite float64 and every square of one, so sums
// over parts of the values, merged in any order, equal one sum over all of them bit for bit.
// Means and variances are rounded once, at the end, from the exact sums (correctly rounded to
// float64 but for subnormal results). This is how a window partitioned over many activities
// reports the same mean and standard deviation as one pass (decision 0033).
//
// The full accumulator is a "small superaccumulator" (R. M. Neal, arXiv 1505.05571): digits of
// 32 bits held in int64 words, carries propagated every 2^30 additions. In front of it, two
// slots each sum the values of one band of 32 exponents in a 192-bit integer, so a column whose
// values keep to a band or two (most do) costs a few register operations a value and 80 bytes;
// the 1 KB of digits is allocated when a third band or a merge needs it.
package exactsum

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
)

const (
	digitBits = 32
	digitMask = 1<<digitBits - 1
	// unitExp is the weight of the lowest bit, 2^-2148: the square of the smallest subnormal.
	unitExp = -2148
	// Value bits reach 2^2099 (a square of the largest float64 is below 2^2048; its digits
	// start at bit 4196 of the accumulator); two more digits hold the carries of 2^63 values.
	digits    = 134
	normEvery = 1 << 30
	// valueShift places a float64's lowest mantissa bit: value m*2^(e-1075) has its lowest
	// bit at accumulator bit e-1+1074 (e the biased exponent, 1 for subnormals).
	valueShift = 1074
	// bandBits: a slot sums the values whose exponent e-1 has the same e-1 >> bandBits.
	bandBits = 5
	// squareFlush: squares below 2^168 in a slot; 2^22 of them stay below 2^190.
	squareFlush = 1 << 22
)

// slot sums values of one band in a 192-bit two's complement integer whose lowest bit is the
// band's lowest: key is the band + 1 for values, -(band + 1) for squares, 0 when empty.
type slot struct {
	key int32
	n   int32
	w   [3]uint64
}

// Sum is an exact sum of float64 values, or of their squares, or both (callers keep them in
// separate Sums). Its zero value is an empty sum. Infinities are kept apart; a NaN makes the
// sum NaN (Driftline's accumulators take NaN as a missing value before they add).
type Sum struct {
	slots   [2]slot
	d       *[digits]int64 // nil until needed
	pending int32
	posInf  bool
	negInf  bool
}

// parts is v's integer mantissa (with the hidden bit but for subnormals), its exponent e-1
// (0 for subnormals: e counted as 1), its sign as 0 or 1, and whether it is finite.
func parts(v float64) (m uint64, ep uint, sign uint64, ok bool) {
	b := math.Float64bits(v)
	e := uint(b>>52) & 0x7ff
	m = b&(1<<52-1) | uint64(min(e, 1))<<52
	return m, max(e, 1) - 1, b >> 63, e != 0x7ff
}

// slotFor is the slot summing band key, taken over from the older slot if neither has it.
func (s *Sum) slotFor(key int32) *slot {
	if s.slots[0].key == key {
		return &s.slots[0]
	}
	if s.slots[1].key == key {
		return &s.slots[1]
	}
	s.flush(&s.slots[1])
	s.slots[1] = s.slots[0]
	s.slots[0] = slot{key: key}
	return &s.slots[0]
}

// Add adds v.
func (s *Sum) Add(v float64) {
	m, ep, sign, ok := parts(v)
	if !ok {
		s.special(v)
		return
	}
	sl := s.slotFor(int32(ep>>bandBits) + 1)
	sh := ep & (1<<bandBits - 1)
	w0, w1 := m<<sh, m>>1>>(63-sh) // m>>(64-sh); below 2^84 in all
	mask := -sign                  // a negative value adds ^w + 1
	var c uint64
	sl.w[0], c = bits.Add64(sl.w[0], w0^mask, sign)
	sl.w[1], c = bits.Add64(sl.w[1], w1^mask, c)
	sl.w[2] += mask + c
}

// AddSquare adds v*v, exactly (no product is rounded).
func (s *Sum) AddSquare(v float64) {
	m, ep, _, ok := parts(v)
	if !ok {
		s.posInf = s.posInf || v == v
		s.negInf = s.negInf || v != v
		return
	}
	sl := s.slotFor(-int32(ep>>bandBits) - 1)
	// (m*2^(ep-1074))^2 = m^2 * 2^(2ep-2148): m^2 (106 bits) shifted by twice ep's offset
	// in the band (at most 62).
	sh := 2 * (ep & (1<<bandBits - 1))
	hi, lo := bits.Mul64(m, m)
	var c uint64
	sl.w[0], c = bits.Add64(sl.w[0], lo<<sh, 0)
	sl.w[1], c = bits.Add64(sl.w[1], hi<<sh|lo>>1>>(63-sh), c)
	sl.w[2] += hi>>1>>(63-sh) + c
	if sl.n++; sl.n == squareFlush {
		s.flush(sl)
		sl.key = -int32(ep>>bandBits) - 1
	}
}

// special records an infinity; a NaN makes the sum NaN (both infinities).
func (s *Sum) special(v float64) {
	s.posInf = s.posInf || !(v < 0)
	s.negInf = s.negInf || !(v > 0)
}

// digitsOf is s's digits, allocated on first use.
func (s *Sum) digitsOf() *[digits]int64 {
	if s.d == nil {
		s.d = new([digits]int64)
	}
	return s.d
}

// flush moves a slot's sum into the digits and empties it.
func (s *Sum) flush(sl *slot) {
	if sl.key != 0 && sl.w != [3]uint64{} {
		s.place(sl.pos(), sl.w)
	}
	*sl = slot{}
}

// pos is the accumulator bit of the slot's lowest bit.
func (sl *slot) pos() uint {
	if sl.key > 0 {
		return uint(sl.key-1)<<bandBits + valueShift
	}
	return uint(-sl.key-1) << (bandBits + 1)
}

// place adds the 192-bit two's complement integer w with its lowest bit at accumulator bit
// pos to the digits.
func (s *Sum) place(pos uint, w [3]uint64) {
	neg := w[2]>>63 == 1
	if neg { // the magnitude: ^w + 1
		c := uint64(1)
		for k := range w {
			w[k], c = bits.Add64(^w[k], 0, c)
		}
	}
	d := s.digitsOf()
	i, sh := pos/digitBits, pos%digitBits
	for k, x := range w {
		for half, c := range [2]uint64{x & digitMask, x >> digitBits} {
			lo, hi := int64((c<<sh)&digitMask), int64(c>>(digitBits-sh))
			if neg {
				lo, hi = -lo, -hi
			}
			j := i + uint(2*k+half) // at most 131: a square of the largest band
			d[j] += lo
			d[j+1] += hi
		}
	}
	s.tick()
	s.tick() // a digit took two parts, each under 2^32
}

func (s *Sum) tick() {
	s.pending++
	if s.pending >= normEvery {
		s.normalise()
	}
}

// normalise propagates the digits' carries: every digit but the top one ends in [0, 2^32).
func (s *Sum) normalise() {
	if s.d != nil {
		normalise(s.d)
	}
	s.pending = 0
}

func normalise(d *[digits]int64) {
	for i := 0; i < digits-1; i++ {
		c := d[i] >> digitBits
		d[i] -= c << digitBits
		d[i+1] += c
	}
}

// Merge adds o's values to s (o is not changed).
func (s *Sum) Merge(o *Sum) {
	for i := range o.slots {
		if sl := o.slots[i]; sl.key != 0 && sl.w != [3]uint64{} {
			s.place(sl.pos(), sl.w)
		}
	}
	if o.d != nil {
		c := *o.d
		normalise(&c)
		s.normalise()
		d := s.digitsOf()
		for i := range d {
			d[i] += c[i]
		}
		s.normalise()
	}
	s.posInf = s.posInf || o.posInf
	s.negInf = s.negInf || o.negInf
}

// Int is the sum as an integer count of 2^-2148 units; nonFinite is +Inf, -Inf or NaN when
// an infinity was added (NaN: both signs), else 0.
func (s *Sum) Int() (n *big.Int, nonFinite float64) {
	switch {
	case s.posInf && s.negInf:
		return nil, math.NaN()
	case s.posInf:
		return nil, math.Inf(1)
	case s.negInf:
		return nil, math.Inf(-1)
	}
	n = new(big.Int)
	if s.d != nil {
		c := *s.d
		normalise(&c)
		n.SetInt64(c[digits-1])
		d := new(big.Int)
		for i := digits - 2; i >= 0; i-- {
			n.Lsh(n, digitBits)
			n.Add(n, d.SetInt64(c[i]))
		}
	}
	for _, sl := range s.slots {
		if sl.key == 0 {
			continue
		}
		w := sl.w
		neg := w[2]>>63 == 1
		if neg {
			c := uint64(1)
			for k := range w {
				w[k], c = bits.Add64(^w[k], 0, c)
			}
		}
		x := new(big.Int)
		for k := 2; k >= 0; k-- {
			x.Lsh(x, 64)
			x.Or(x, new(big.Int).SetUint64(w[k]))
		}
		x.Lsh(x, sl.pos())
		if neg {
			x.Neg(x)
		}
		n.Add(n, x)
	}
	return n, 0
}

// Float64 is the sum rounded to the nearest float64.
func (s *Sum) Float64() float64 {
	return s.Quo(1)
}

// Quo is the sum divided by n (a mean), rounded once to the nearest float64; 0 when n is 0.
func (s *Sum) Quo(n int64) float64 {
	if n == 0 {
		return 0
	}
	x, nf := s.Int()
	if x == nil {
		return nf
	}
	return quo(x, unitExp, new(big.Int).SetInt64(n))
}

// quo is x*2^exp/den rounded to the nearest float64 (±Inf beyond its range).
func quo(x *big.Int, exp int, den *big.Int) float64 {
	num := new(big.Float).SetInt(x)
	num.SetMantExp(num, exp)
	z := new(big.Float).SetPrec(53).Quo(num, new(big.Float).SetInt(den))
	f, _ := z.Float64()
	return f
}

// Variance is the population variance of n values whose sum is s and sum of squares is sq,
// ((n*sq - s^2) / n^2), rounded once; 0 when n is 0.
func Variance(s, sq *Sum, n int64) float64 {
	if n == 0 {
		return 0
	}
	x, nf := s.Int()
	y, nf2 := sq.Int()
	if x == nil || y == nil {
		return math.Abs(nf + nf2) // an infinity in the values or their squares
	}
	// s = x*2^-2148 and sq = y*2^-2148: n*sq - s^2 = (n*y*2^2148 - x^2) * 2^-4296.
	nb := big.NewInt(n)
	a := new(big.Int).Mul(y, nb)
	a.Lsh(a, -unitExp)
	a.Sub(a, new(big.Int).Mul(x, x))
	if a.Sign() <= 0 {
		return 0
	}
	return quo(a, 2*unitExp, new(big.Int).Mul(nb, nb))
}

// State is a Sum for encoding: the exact integer, normalised, as a magnitude shifted right
// by its trailing zero bits (a sum of a few values is a few bytes), and the infinities seen.
type State struct {
	Int            []byte // big-endian magnitude of the integer >> Shift, 2^-2148 units
	Shift          uint
	Neg            bool
	PosInf, NegInf bool
}

// State encodes s.
func (s *Sum) State() State {
	st := State{PosInf: s.posInf, NegInf: s.negInf}
	c := Sum{slots: s.slots, d: s.d}
	x, _ := c.Int()
	if x.Sign() == 0 {
		return st
	}
	st.Neg = x.Sign() < 0
	x.Abs(x)
	st.Shift = x.TrailingZeroBits()
	st.Int = x.Rsh(x, st.Shift).Bytes()
	return st
}

// FromState restores a Sum encoded by State; a state too large for a sum is an error.
func FromState(st State) (Sum, error) {
	var s Sum
	x := new(big.Int).SetBytes(st.Int)
	if st.Shift > digits*digitBits || x.BitLen()+int(st.Shift) > digits*digitBits-1 {
		return s, fmt.Errorf("exact sum of %d bits: more than a sum holds", x.BitLen()+int(st.Shift))
	}
	x.Lsh(x, st.Shift)
	if x.Sign() > 0 {
		d := s.digitsOf()
		for i := 0; i < digits && x.Sign() > 0; i++ {
			d[i] = int64(x.Uint64() & digitMask)
			x.Rsh(x, digitBits)
		}
		if st.Neg {
			for i := range d {
				d[i] = -d[i]
			}
		}
		s.normalise()
	}
	s.posInf, s.negInf = st.PosInf, st.NegInf
	return s, nil
}

// Moments is an exact sum of values and of their squares, both taken in one call: two slots
// hold a band's sum and sum of squares side by side, moved to the two Sums when a third band
// comes or a reader asks.
type Moments struct {
	slots        [2]momentSlot
	sum, squares Sum
}

type momentSlot struct {
	band int32 // band + 1; 0: empty
	n    int32
	v, q [3]uint64
}

// Add adds v to the sum and its square to the sum of squares.
func (p *Moments) Add(v float64) {
	m, ep, sign, ok := parts(v)
	if !ok {
		p.sum.special(v)
		p.squares.AddSquare(v)
		return
	}
	band := int32(ep>>bandBits) + 1
	sl := &p.slots[0]
	if sl.band != band {
		sl = p.slotFor(band)
	}
	sh := ep & (1<<bandBits - 1)
	mask := -sign // a negative value adds ^w + 1
	var c uint64
	sl.v[0], c = bits.Add64(sl.v[0], (m<<sh)^mask, sign)
	sl.v[1], c = bits.Add64(sl.v[1], (m>>1>>(63-sh))^mask, c)
	sl.v[2] += mask + c
	sh *= 2
	hi, lo := bits.Mul64(m, m)
	sl.q[0], c = bits.Add64(sl.q[0], lo<<sh, 0)
	sl.q[1], c = bits.Add64(sl.q[1], hi<<sh|lo>>1>>(63-sh), c)
	sl.q[2] += hi>>1>>(63-sh) + c
	if sl.n++; sl.n == squareFlush {
		p.flushSlot(sl)
		sl.band = band
	}
}

// slotFor is the slot of band (slot 0 after the call), the older slot moved out if needed.
func (p *Moments) slotFor(band int32) *momentSlot {
	if p.slots[1].band != band {
		p.flushSlot(&p.slots[1])
		p.slots[1] = momentSlot{band: band}
	}
	p.slots[0], p.slots[1] = p.slots[1], p.slots[0]
	return &p.slots[0]
}

// flushSlot moves a slot's sums into the Sums and empties it.
func (p *Moments) flushSlot(sl *momentSlot) {
	if sl.band != 0 {
		b := uint(sl.band - 1)
		if sl.v != [3]uint64{} {
			p.sum.place(b<<bandBits+valueShift, sl.v)
		}
		if sl.q != [3]uint64{} {
			p.squares.place(b<<(bandBits+1), sl.q)
		}
	}
	*sl = momentSlot{}
}

// Sums are the exact sum of the values and of their squares so far.
func (p *Moments) Sums() (sum, squares *Sum) {
	p.flushSlot(&p.slots[0])
	p.flushSlot(&p.slots[1])
	return &p.sum, &p.squares
}

// Merge adds o's values to p.
func (p *Moments) Merge(o *Moments) {
	s, q := p.Sums()
	os, oq := o.Sums()
	s.Merge(os)
	q.Merge(oq)
}

// SetSums replaces p's sums.
func (p *Moments) SetSums(sum, squares Sum) {
	*p = Moments{sum: sum, squares: squares}
}
