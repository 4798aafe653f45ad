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
// match. It sorts both sides by key (interned to integers) and time and sweeps each key's
// entity rows in time order, adding the feature rows known by then to a list ordered by
// (event, created, source order), so each entity row is answered by one binary search:
// O((n + m) log(n + m)). At most 2^31 rows a side.
func AsOf(entities []EntityRow, rows []FeatureRow, lookback time.Duration) []Match {
	out := make([]Match, len(entities))
	eo, fo := asofOrders(entities, rows)
	back := lookback.Microseconds()
	// The current key's rows known so far, ordered by (event, created, index); the times are
	// copied in so the searches stay in this small slice.
	var known []asofKnown
	f := 0
	for e := 0; e < len(eo); {
		key := eo[e].key
		for f < len(fo) && fo[f].key < key {
			f++
		}
		known = known[:0]
		for ; e < len(eo) && eo[e].key == key; e++ {
			at := eo[e].time
			for f < len(fo) && fo[f].key == key && fo[f].time <= at {
				known = addKnown(known, asofKnown{fo[f].event, fo[f].time, fo[f].idx})
				f++
			}
			// The last known row with event <= at.
			j := sort.Search(len(known), func(k int) bool { return known[k].event > at }) - 1
			if j < 0 {
				continue
			}
			r := &rows[known[j].idx]
			if back > 0 && r.Event <= at-back {
				continue // the latest is too old; any earlier one is older still
			}
			out[eo[e].idx] = Match{Found: true, Event: r.Event, Created: r.Created, Values: r.Values}
		}
		for f < len(fo) && fo[f].key == key {
			f++
		}
	}
	return out
}

// asofOrd is a row of either side in the join's order: by key (interned), then time (an
// entity row's time, a feature row's created time), then position.
type asofOrd struct {
	key   int32
	idx   int32
	time  int64
	event int64 // feature rows: the event (time is the created time)
}

func byKeyTime(a, b asofOrd) int {
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c
	}
	if c := cmp.Compare(a.time, b.time); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx) // stable
}

// asofOrders are both sides sorted by key and time, keys made small ids (one map for both
// sides) so sorting compares integers. Feature rows of keys no entity asks for are left out.
func asofOrders(entities []EntityRow, rows []FeatureRow) (eo, fo []asofOrd) {
	ids := make(map[string]int32, 1024)
	eo = make([]asofOrd, len(entities))
	for i, e := range entities {
		v, ok := ids[e.Key]
		if !ok {
			v = int32(len(ids))
			ids[e.Key] = v
		}
		eo[i] = asofOrd{v, int32(i), e.At, 0}
	}
	fo = make([]asofOrd, 0, len(rows))
	for i, r := range rows {
		if k, ok := ids[r.Key]; ok {
			fo = append(fo, asofOrd{k, int32(i), r.Created, r.Event}) // in the order they become known
		}
	}
	slices.SortFunc(eo, byKeyTime)
	slices.SortFunc(fo, byKeyTime)
	return eo, fo
}

// asofKnown is a feature row known by an entity row's time.
type asofKnown struct {
	event, created int64
	idx            int32
}

func knownLess(x, y asofKnown) int {
	if c := cmp.Compare(x.event, y.event); c != 0 {
		return c
	}
	if c := cmp.Compare(x.created, y.created); c != 0 {
		return c
	}
	return cmp.Compare(x.idx, y.idx)
}

// addKnown adds k to the known rows in (event, created, index) order.
func addKnown(known []asofKnown, k asofKnown) []asofKnown {
	if n := len(known); n == 0 || knownLess(known[n-1], k) < 0 {
		return append(known, k) // the usual case: rows arrive in event order
	}
	i, _ := slices.BinarySearchFunc(known, k, knownLess)
	return slices.Insert(known, i, k)
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
