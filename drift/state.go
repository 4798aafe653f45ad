package drift

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"github.com/driftline/driftline/internal/exactsum"
)

// The accumulators' states, so a long pass over a window can be checkpointed and resumed
// where it stopped (activities.Data.Inspect): a restored accumulator that is given the rest of
// the rows ends exactly as one that saw them all. Only what the rows changed is stored; what
// comes from the reference profile is rebuilt by the constructor the state is restored into.

// momentsState mirrors moments for gob: the exact sums. Shift, S1 and S2 are the sums of a
// state stored before the sums were exact (shifted by the first value); such a state is
// converted within a relative 1e-12, as it was merged then.
type momentsState struct {
	N      int64
	Sum    exactsum.State
	Sq     exactsum.State
	Exact  bool
	Shift  float64
	S1, S2 float64
}

func (m *moments) state() momentsState {
	s, sq := m.Sums()
	return momentsState{N: m.n, Sum: s.State(), Sq: sq.State(), Exact: true}
}

func (s momentsState) moments() (moments, error) {
	m := moments{n: s.N}
	var sum, sq exactsum.Sum
	if !s.Exact {
		n := float64(s.N)
		sum.Add(n * s.Shift)
		sum.Add(s.S1)
		for _, v := range []float64{s.S2, 2 * s.Shift * s.S1, n * s.Shift * s.Shift} {
			sq.Add(v)
		}
		m.SetSums(sum, sq)
		return m, nil
	}
	sum, err := exactsum.FromState(s.Sum)
	if err != nil {
		return m, err
	}
	if sq, err = exactsum.FromState(s.Sq); err != nil {
		return m, err
	}
	m.SetSums(sum, sq)
	return m, nil
}

// bottomKState is a BottomK's sample and threshold.
type bottomKState struct {
	K         int
	Salt      uint64
	P         []uint64
	V         []float64
	Threshold uint64
}

func (b *BottomK) state() bottomKState {
	s := bottomKState{K: b.k, Salt: b.salt, Threshold: b.threshold, P: make([]uint64, len(b.buf)), V: make([]float64, len(b.buf))}
	for i, x := range b.buf {
		s.P[i], s.V[i] = x.p, x.v
	}
	return s
}

func (b *BottomK) restore(s bottomKState) error {
	if s.K != b.k || s.Salt != b.salt || len(s.P) != len(s.V) {
		return fmt.Errorf("sample state is for k %d salt %x, this sample has k %d salt %x", s.K, s.Salt, b.k, b.salt)
	}
	b.threshold = s.Threshold
	b.buf = make([]prio, len(s.P))
	for i := range s.P {
		b.buf[i] = prio{s.P[i], s.V[i]}
	}
	return nil
}

type windowFeatureState struct {
	Name        string
	Between, At []int64
	Bins        []int64
	Mom         momentsState
	Sample      *bottomKState
	Cats        map[string]int64
	Nulls       int64
}

// MarshalBinary encodes what the window has counted so far.
func (w *Window) MarshalBinary() ([]byte, error) {
	st := make([]windowFeatureState, len(w.feats))
	for i, f := range w.feats {
		st[i] = windowFeatureState{Name: f.ref.Name, Between: f.between, At: f.at, Bins: f.bins, Mom: f.mom.state(), Cats: f.cats, Nulls: f.nulls}
		if f.sample != nil {
			s := f.sample.state()
			st[i].Sample = &s
		}
	}
	return encode(st)
}

// UnmarshalBinary restores counts encoded by MarshalBinary into a window built by NewWindow
// from the same reference profile; a state of another profile is an error naming the feature.
func (w *Window) UnmarshalBinary(data []byte) error {
	var st []windowFeatureState
	if err := decode(data, &st); err != nil {
		return err
	}
	if len(st) != len(w.feats) {
		return fmt.Errorf("drift window state has %d features, the window %d", len(st), len(w.feats))
	}
	for i, f := range w.feats {
		s := st[i]
		if s.Name != f.ref.Name || len(s.Between) != len(f.between) || len(s.At) != len(f.at) || len(s.Bins) != len(f.bins) ||
			(s.Sample == nil) != (f.sample == nil) {
			return fmt.Errorf("drift window state of feature %q does not fit the window's feature %q", s.Name, f.ref.Name)
		}
		copy(f.between, s.Between)
		copy(f.at, s.At)
		copy(f.bins, s.Bins)
		mom, err := s.Mom.moments()
		if err != nil {
			return fmt.Errorf("drift window state of feature %q: %v", s.Name, err)
		}
		f.mom, f.nulls = mom, s.Nulls
		if f.cats != nil {
			f.cats = map[string]int64{}
			for k, v := range s.Cats {
				f.cats[k] = v
			}
		}
		if f.sample != nil {
			if err := f.sample.restore(*s.Sample); err != nil {
				return fmt.Errorf("drift window state of feature %q: %v", s.Name, err)
			}
		}
	}
	return nil
}

type profileBuilderState struct {
	Names   []string
	Mom     []momentsState
	Samples []bottomKState // K 0: a categorical feature
	Cats    []map[string]int64
	Nulls   []int64
}

// MarshalBinary encodes what the builder has taken so far.
func (b *ProfileBuilder) MarshalBinary() ([]byte, error) {
	st := profileBuilderState{Names: b.names, Nulls: b.nulls}
	for i := range b.names {
		st.Mom = append(st.Mom, b.mom[i].state())
		var s bottomKState
		if b.samples[i] != nil {
			s = b.samples[i].state()
		}
		st.Samples = append(st.Samples, s)
		c := b.cats[i]
		if c == nil {
			c = map[string]int64{}
		}
		st.Cats = append(st.Cats, c)
	}
	return encode(st)
}

// UnmarshalBinary restores a state encoded by MarshalBinary into a builder made by
// NewProfileBuilder with the same features.
func (b *ProfileBuilder) UnmarshalBinary(data []byte) error {
	var st profileBuilderState
	if err := decode(data, &st); err != nil {
		return err
	}
	if fmt.Sprint(st.Names) != fmt.Sprint(b.names) || len(st.Mom) != len(b.names) || len(st.Samples) != len(b.names) ||
		len(st.Cats) != len(b.names) || len(st.Nulls) != len(b.names) {
		return fmt.Errorf("profile state is for features %v, the builder has %v", st.Names, b.names)
	}
	for i := range b.names {
		mom, err := st.Mom[i].moments()
		if err != nil {
			return fmt.Errorf("profile state of feature %q: %v", b.names[i], err)
		}
		b.mom[i], b.nulls[i] = mom, st.Nulls[i]
		if (st.Samples[i].K == 0) != (b.samples[i] == nil) {
			return fmt.Errorf("profile state of feature %q has another kind", b.names[i])
		}
		if b.samples[i] != nil {
			if err := b.samples[i].restore(st.Samples[i]); err != nil {
				return fmt.Errorf("profile state of feature %q: %v", b.names[i], err)
			}
		}
		if b.cats[i] != nil {
			b.cats[i] = map[string]int64{}
			for k, v := range st.Cats[i] {
				b.cats[i][k] = v
			}
		}
	}
	return nil
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(data []byte, v any) error {
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return fmt.Errorf("decode state: %w", err)
	}
	return nil
}
