package features

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"
)

// A FeatureRow is one row of a feature view: an entity's values as of an event time, known
// (written to the source) at a created time. Times are Unix microseconds.
type FeatureRow struct {
	Key     string
	Event   int64
	Created int64
	Values  []float64
}

// An EntityRow asks for an entity's features as of a time: the training row's time.
type EntityRow struct {
	Key string
	At  int64
}

// A Match is the feature row an entity row joined to; Found is false when none qualifies
// (no row of the entity, or none known by then within the lookback).
type Match struct {
	Found   bool
	Event   int64
	Created int64
	Values  []float64
}

// Semantics of the point-in-time join (docs/features.md): for an entity row (key, T) the
// match is, among the view's rows of that key with
//
//	event time <= T  and  created time <= T  and  event time > T - lookback,
//
// the one with the latest event time; rows with the same event time are ordered by created
// time, then by their order in the source (the later write wins). A value written after T is
// never used, even for an event before T: that is what Feast's default join, which filters by
// event time only, lets leak into training sets. A lookback of 0 means no lower bound.

// AsOf joins entity rows to feature rows, point-in-time correct: out[i] is entities[i]'s
// match. It sorts both sides by key and sweeps each key's entity rows in time order, adding
// the feature rows known by then to a list ordered by (event, created, source order), so
// each entity row is answered by one binary search: O((n + m) log(n + m)).
func AsOf(entities []EntityRow, rows []FeatureRow, lookback time.Duration) []Match {
	out := make([]Match, len(entities))
	eo := make([]int, len(entities))
	for i := range eo {
		eo[i] = i
	}
	sort.SliceStable(eo, func(a, b int) bool {
		x, y := entities[eo[a]], entities[eo[b]]
		if x.Key != y.Key {
			return x.Key < y.Key
		}
		return x.At < y.At
	})
	// Feature rows by key, then by created time (the order they become known), then source order.
	fo := make([]int, len(rows))
	for i := range fo {
		fo[i] = i
	}
	sort.SliceStable(fo, func(a, b int) bool {
		x, y := rows[fo[a]], rows[fo[b]]
		if x.Key != y.Key {
			return x.Key < y.Key
		}
		return x.Created < y.Created
	})
	back := lookback.Microseconds()
	var known []int // the current key's rows known so far, ordered by (event, created, index)
	less := func(a, b int) int {
		x, y := rows[a], rows[b]
		if c := cmp.Compare(x.Event, y.Event); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Created, y.Created); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	f := 0
	for e := 0; e < len(eo); {
		key := entities[eo[e]].Key
		for f < len(fo) && rows[fo[f]].Key < key {
			f++
		}
		known = known[:0]
		for ; e < len(eo) && entities[eo[e]].Key == key; e++ {
			at := entities[eo[e]].At
			for f < len(fo) && rows[fo[f]].Key == key && rows[fo[f]].Created <= at {
				i, _ := slices.BinarySearchFunc(known, fo[f], less)
				known = slices.Insert(known, i, fo[f])
				f++
			}
			// The last known row with event <= at.
			j := sort.Search(len(known), func(k int) bool { return rows[known[k]].Event > at }) - 1
			if j < 0 {
				continue
			}
			r := rows[known[j]]
			if back > 0 && r.Event <= at-back {
				continue // the latest is too old; any earlier one is older still
			}
			out[eo[e]] = Match{Found: true, Event: r.Event, Created: r.Created, Values: r.Values}
		}
		for f < len(fo) && rows[fo[f]].Key == key {
			f++
		}
	}
	return out
}

// Micros converts a time to the join's Unix microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// String renders a match for error messages and tests.
func (m Match) String() string {
	if !m.Found {
		return "no match"
	}
	return fmt.Sprintf("event %s created %s values %v", time.UnixMicro(m.Event).UTC().Format(time.RFC3339), time.UnixMicro(m.Created).UTC().Format(time.RFC3339), m.Values)
}
