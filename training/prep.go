package training

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/spec"
)

// BinSampleRows is about how many training rows the gbdt bins are cut from.
const BinSampleRows = 200_000

// RowHash mixes a row's key with a salt (splitmix64): a uniform, deterministic draw per row
// for sampling and for the early-stopping validation split.
func RowHash(key, salt uint64) uint64 {
	z := key + salt*0x9e3779b97f4a7c15 + 0x632be59bd9b4e5f5
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Categorical says which of the spec's features are categories.
func Categorical(sp spec.Spec) []bool {
	out := make([]bool, len(sp.Features))
	for j, k := range sp.FeatureKinds() {
		out[j] = k == drift.Categorical
	}
	return out
}

// NewFeatures reads the spec's features from batches.
func NewFeatures(sp spec.Spec) (*dataset.Features, error) {
	return dataset.NewFeatures(sp.Contract, sp.Features, Categorical(sp))
}

// Prep gathers, from the accepted training rows of the window's first pass, the candidate's
// reference profile and (gbdt) a hash sample of rows for the bins.
type Prep struct {
	sp      spec.Spec
	fr      *dataset.Features
	profile *drift.ProfileBuilder
	gbdt    bool
	limit   uint64 // sample rows whose hash is at most this
	sample  [][]float64
	x       []float64
}

// NewPrep prepares for a window of windowRows rows.
func NewPrep(sp spec.Spec, windowRows int64) (*Prep, error) {
	fr, err := NewFeatures(sp)
	if err != nil {
		return nil, err
	}
	p := &Prep{sp: sp, fr: fr, profile: drift.NewProfileBuilder(sp.Features, sp.FeatureKinds()), gbdt: sp.Trainer.Name == "gbdt",
		limit: math.MaxUint64, sample: make([][]float64, len(sp.Features)), x: make([]float64, len(sp.Features))}
	if windowRows > BinSampleRows {
		p.limit = uint64(float64(BinSampleRows) / float64(windowRows) * float64(math.MaxUint64))
	}
	return p, nil
}

// Add takes accepted training row r of b.
func (p *Prep) Add(b *dataset.Batch, r int) {
	key := b.RowKey0 + uint64(r)
	p.fr.Observe(b, r, func(i int, v float64) { p.profile.AddNumeric(i, v, key) }, func(i int, v string) { p.profile.AddCategory(i, v) })
	if p.gbdt && (p.limit == math.MaxUint64 || RowHash(key, 1) <= p.limit) {
		p.fr.Vector(b, r, p.x)
		for j, v := range p.x {
			p.sample[j] = append(p.sample[j], v)
		}
	}
}

// Profile is the reference profile of the rows added.
func (p *Prep) Profile() drift.Profile { return p.profile.Profile() }

// Binner cuts the gbdt bins from the sample (nil for the other trainers).
func (p *Prep) Binner() (*model.Binner, error) {
	if !p.gbdt {
		return nil, nil
	}
	params, err := hparams.From(p.sp.Trainer.Objective, p.sp.Trainer.Growth, p.sp.Trainer.Params)
	if err != nil {
		return nil, err
	}
	return model.NewBinner(p.sample, Categorical(p.sp), params.MaxBins)
}

type prepState struct {
	Profile []byte
	Sample  [][]float64
	Limit   uint64
}

// MarshalBinary encodes what the rows added so far gave (a checkpoint of the window's pass).
func (p *Prep) MarshalBinary() ([]byte, error) {
	prof, err := p.profile.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = gob.NewEncoder(&buf).Encode(prepState{Profile: prof, Sample: p.sample, Limit: p.limit})
	return buf.Bytes(), err
}

// UnmarshalBinary restores a state encoded by MarshalBinary into a Prep made by NewPrep
// with the same spec and window.
func (p *Prep) UnmarshalBinary(data []byte) error {
	var st prepState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decode training preparation state: %w", err)
	}
	if st.Limit != p.limit || (len(st.Sample) != len(p.sample) && len(st.Sample) != 0) {
		return fmt.Errorf("training preparation state is for another window (sample limit %d, %d features; this one %d, %d)",
			st.Limit, len(st.Sample), p.limit, len(p.sample))
	}
	if err := p.profile.UnmarshalBinary(st.Profile); err != nil {
		return err
	}
	for j := range p.sample {
		p.sample[j] = nil
		if len(st.Sample) > 0 {
			p.sample[j] = st.Sample[j]
		}
	}
	return nil
}

// Merge adds o, a preparation of the same spec and window over other rows (another
// partition), to p: the reference profile merges (drift.ProfileBuilder.Merge) and the gbdt
// bin sample is the union of both (a row is in it by its key's hash, wherever it was read).
func (p *Prep) Merge(o *Prep) error {
	if o.limit != p.limit || len(o.sample) != len(p.sample) {
		return fmt.Errorf("merge training preparations: another window (sample limit %d, %d features; this one %d, %d)",
			o.limit, len(o.sample), p.limit, len(p.sample))
	}
	if err := p.profile.Merge(o.profile); err != nil {
		return err
	}
	for j := range p.sample {
		p.sample[j] = append(p.sample[j], o.sample[j]...)
	}
	return nil
}
