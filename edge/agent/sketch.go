package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Reference is what a device needs of its model's reference profile to sketch its inputs: the
// inner edges of each numeric feature's drift bins (the same bins the server's monitor uses:
// (-inf, e0], (e0, e1], ..., (ek, inf)). A feature without edges (categorical, or constant in
// training) is counted, and its missing values, nothing more.
type Reference struct {
	Version  int                `json:"version"`
	Features []ReferenceFeature `json:"features"`
}

// ReferenceFeature is one feature's edges.
type ReferenceFeature struct {
	Name  string    `json:"name"`
	Edges []float64 `json:"edges,omitempty"`
}

// Sketch is a drift sketch of the inputs a device answered, instead of the inputs: for each
// feature of the reference, in its order, how many values fell in each bin (len(edges)+1
// counts; none for a feature without edges) and how many were missing. Its size depends on
// the features and bins, not on how many predictions it counts (SketchMaxBytes bounds it).
type Sketch struct {
	Version int        `json:"version"` // the reference's (the installed model's) version
	From    time.Time  `json:"from"`
	To      time.Time  `json:"to"`
	Count   uint64     `json:"count"`
	Counts  [][]uint64 `json:"counts"`
	Nulls   []uint64   `json:"nulls"`
}

// SketchMaxBytes bounds a sketch's JSON: one is closed at most every SketchRows predictions,
// so a device sends at most this much for every 10,000 predictions (the API refuses more).
const (
	SketchMaxBytes = 8 << 10
	SketchRows     = 10000
)

// Sketcher counts the inputs of one model version into its reference's bins.
type Sketcher struct {
	mu    sync.Mutex
	ref   Reference
	index []int // the model's feature i is the sketch's feature index[i] (-1: none)
	cur   Sketch
}

// NewSketcher sketches rows in the model's feature order (features) into ref's bins.
func NewSketcher(ref Reference, features []string) *Sketcher {
	s := &Sketcher{ref: ref, index: make([]int, len(features))}
	pos := map[string]int{}
	for i, f := range ref.Features {
		pos[f.Name] = i
	}
	for i, name := range features {
		j, ok := pos[name]
		if !ok {
			j = -1
		}
		s.index[i] = j
	}
	s.reset(time.Now())
	return s
}

func (s *Sketcher) reset(now time.Time) {
	s.cur = Sketch{Version: s.ref.Version, From: now.UTC(), Counts: make([][]uint64, len(s.ref.Features)), Nulls: make([]uint64, len(s.ref.Features))}
	for i, f := range s.ref.Features {
		s.cur.Counts[i] = make([]uint64, len(f.Edges)+1)
		if len(f.Edges) == 0 {
			s.cur.Counts[i] = []uint64{}
		}
	}
}

// Version is the version whose reference the sketcher counts in.
func (s *Sketcher) Version() int { return s.ref.Version }

// Add counts one row (NaN: a missing value).
func (s *Sketcher) Add(x []float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.Count++
	for i, v := range x {
		if i >= len(s.index) || s.index[i] < 0 {
			continue
		}
		j := s.index[i]
		switch {
		case math.IsNaN(v):
			s.cur.Nulls[j]++
		case len(s.cur.Counts[j]) > 0:
			s.cur.Counts[j][sort.SearchFloat64s(s.ref.Features[j].Edges, v)]++
		}
	}
}

// Take returns the sketch and starts a new one when it holds SketchRows rows, or any rows and
// is older than age; nil otherwise.
func (s *Sketcher) Take(age time.Duration) *Sketch {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.cur.Count == 0 || (s.cur.Count < SketchRows && now.Sub(s.cur.From) < age) {
		return nil
	}
	out := s.cur
	out.To = now.UTC()
	s.reset(now)
	return &out
}

// FetchReference asks url (the fleet's .../reference) for version's reference.
func FetchReference(ctx context.Context, url, token string, version int) (Reference, error) {
	var ref Reference
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?version=%d", url, version), nil)
	if err != nil {
		return ref, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return ref, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return ref, fmt.Errorf("reference of v%d: %s: %s", version, resp.Status, msg)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ref); err != nil {
		return ref, fmt.Errorf("reference of v%d: %v", version, err)
	}
	if ref.Version != version {
		return ref, fmt.Errorf("reference of v%d: the source sent v%d's", version, ref.Version)
	}
	return ref, nil
}
