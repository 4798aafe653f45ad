package edge

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"slices"
)

// Feature is one input of a bundle's model.
type Feature struct {
	Name        string
	Categorical bool      // integer categories 0..253; others are "unseen"
	Cuts        []float64 // numeric: the sorted distinct thresholds the trees compare with
	Min, Max    float64   // the contract's range (NaN: none)
}

// Tree is a tree of the server's int8 variant: node arrays, children by index (-1: a leaf),
// a numeric node going left when the value's bin is at most Index (bin 0 is a missing value,
// bin k > 0 means k-1 thresholds are below the value), a categorical node when the value's
// category bit is set in CatLeft.
type Tree struct {
	Feature     []uint16
	Index       []uint16
	DefaultLeft []bool
	Left, Right []int32
	Leaf        []int8
	CatLeft     [][4]uint64
}

func (t *Tree) isCat(i int) bool { return t.CatLeft != nil && t.CatLeft[i] != [4]uint64{} }

// Body is what a bundle predicts with, before encoding.
type Body struct {
	Kind, Objective int
	Base, Scale     float64 // trees: base score; linear: intercept. Scale multiplies int8 values.
	Features        []Feature
	Weights         []int8 // linear
	Means, Scales   []float64
	Trees           []Tree
}

// Model is a loaded bundle, ready to predict.
type Model struct {
	Manifest  Manifest
	kind      int
	logistic  bool
	base      float64
	scale     float64
	features  []Feature
	weights   []int8
	means     []float64
	scales    []float64
	roots     []int32     // each tree's first node
	nodes     []node      // every tree's nodes, tree after tree
	cats      [][4]uint64 // categorical sets
	catBins   []bool      // per feature: categorical
	bodyBytes int
}

// node is one node as the walk reads it (24 bytes, so a tree's first levels share a few
// cache lines).
type node struct {
	thr   float64 // a numeric node: the threshold a present value goes left at or below
	right int32   // an internal node: the right child (the left is the next node)
	aux   uint32  // another internal node: the threshold index, or the category set's position
	feat  uint16
	kind  uint8 // kindLeaf, kindNumeric, kindOther
	flags uint8 // the body's flags
	leaf  int8
}

// Node kinds: a leaf; a numeric split on a numeric feature with a threshold (one comparison);
// any other split (categorical, on a categorical feature, or with no threshold), by bins.
const (
	kindLeaf = iota
	kindNumeric
	kindOther
)

// Node flags in the body.
const (
	flagLeaf        = 1
	flagDefaultLeft = 2
	flagCategorical = 4
)

// Options are what a device checks a bundle against.
type Options struct {
	// Keys are the registry's bundle-signing public keys the device trusts.
	Keys []ed25519.PublicKey
	// Installed is the counter of the bundle installed now (0: none): an older one is refused.
	Installed uint64
	// Features, when set, is the feature order the host program sends: a bundle of another
	// order is refused.
	Features []string
}

// Load verifies a bundle and reads its model.
func Load(data []byte, o Options) (*Model, error) {
	man, body, err := Open(data, o.Keys)
	if err != nil {
		return nil, err
	}
	if man.Counter < o.Installed {
		return nil, refuse("bundle counter %d is older than the installed %d (model %s v%d): a rollback must come as a newer bundle",
			man.Counter, o.Installed, man.Model, man.Version)
	}
	if o.Features != nil && !slices.Equal(o.Features, man.Features) {
		for i := range max(len(o.Features), len(man.Features)) {
			var want, got string
			if i < len(o.Features) {
				want = o.Features[i]
			}
			if i < len(man.Features) {
				got = man.Features[i]
			}
			if want != got {
				return nil, refuse("feature order differs at position %d: the bundle has %q, the device sends %q", i, got, want)
			}
		}
	}
	m, err := decode(body, len(man.Features))
	if err != nil {
		return nil, err
	}
	m.Manifest = man
	for i := range m.features {
		m.features[i].Name = man.Features[i]
	}
	return m, nil
}

// Encode writes a body in the bundle's byte layout (docs/edge.md): trees in preorder, each
// internal node's left child the next node.
func Encode(b Body) ([]byte, error) {
	var w bytes.Buffer
	put := func(v any) { _ = binary.Write(&w, binary.LittleEndian, v) }
	put([4]uint8{uint8(b.Kind), uint8(b.Objective), 0, 0})
	put(b.Base)
	put(b.Scale)
	put(uint32(len(b.Features)))
	for _, f := range b.Features {
		put([4]uint8{boolByte(f.Categorical), uint8(indexWidth(f)), 0, 0})
		put(f.Min)
		put(f.Max)
		put(uint32(len(f.Cuts)))
		put(f.Cuts)
	}
	switch b.Kind {
	case KindLinear:
		put(b.Weights)
		put(b.Means)
		put(b.Scales)
	case KindTrees:
		put(uint32(len(b.Trees)))
		for k := range b.Trees {
			if err := encodeTree(&w, &b.Trees[k], b.Features); err != nil {
				return nil, refuse("tree %d: %v", k, err)
			}
		}
	default:
		return nil, refuse("unknown kind %d", b.Kind)
	}
	return w.Bytes(), nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// indexWidth is the bytes of a feature's threshold index: 1 up to 255 thresholds, else 2.
func indexWidth(f Feature) int {
	if len(f.Cuts) > 255 {
		return 2
	}
	return 1
}

func featureWidth(p int) int {
	if p > 256 {
		return 2
	}
	return 1
}

func nodeWidth(n int) int {
	if n > 65536 {
		return 4
	}
	return 2
}

func putUint(w *bytes.Buffer, v uint64, width int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	w.Write(b[:width])
}

func (r *reader) uint(width int, what string) uint64 {
	s := r.need(width, what)
	var b [8]byte
	copy(b[:], s)
	return binary.LittleEndian.Uint64(b[:])
}
