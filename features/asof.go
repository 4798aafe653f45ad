package features

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sort"
	"sync"
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
// match. It orders both sides by key (interned to small integers) and time, a counting sort by
// key on every core then each key's rows by time, and sweeps each key's entity rows in time
// order, adding the feature rows known by then to a list ordered by (event, created, source
// order), so each entity row is answered by one binary search. At most 2^31 rows a side.
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

func byTimeIdx(a, b asofOrd) int {
	if c := cmp.Compare(a.time, b.time); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx) // stable
}

// asofOrders are both sides in (key, time, position) order, keys made small ids (one map for
// both sides, ids in the order entity rows first name them). Feature rows of keys no entity
// asks for are left out. The feature rows' keys are looked up on every core (the map is only
// read by then); each side is then grouped by key with a counting sort (stable, so a key's
// rows stay in source order) and each key's few rows sorted by time, the keys' groups shared
// out over the cores: no comparison sort over the whole side.
func asofOrders(entities []EntityRow, rows []FeatureRow) (eo, fo []asofOrd) {
	ki := newKeyIndex(len(entities) / 4)
	for _, e := range entities {
		ki.intern(e.Key)
	}
	eo = groupByKey(ki, len(entities), func(i int) string { return entities[i].Key },
		func(k, i int32) asofOrd { return asofOrd{k, i, entities[i].At, 0} })
	fo = groupByKey(ki, len(rows), func(i int) string { return rows[i].Key },
		func(k, i int32) asofOrd { return asofOrd{k, i, rows[i].Created, rows[i].Event} })
	return eo, fo
}

// groupByKey is rows [0, n) of keys the index holds in (key, time, position) order: a
// counting sort by key run on every core (each core looks up and counts its range of rows,
// then places them after the earlier ranges' rows of each key, so a key's rows stay in
// position order), then each key's few rows sorted by time.
func groupByKey(ki *keyIndex, n int, keyOf func(i int) string, row func(k, i int32) asofOrd) []asofOrd {
	nkeys := ki.len()
	keys := make([]int32, n)
	ranges := splitRange(n)
	counts := make([][]int32, len(ranges))
	inRanges(ranges, func(p, lo, hi int) {
		c := make([]int32, nkeys)
		for i := lo; i < hi; i++ {
			k := ki.lookup(keyOf(i))
			keys[i] = k
			if k >= 0 {
				c[k]++
			}
		}
		counts[p] = c
	})
	start := make([]int32, nkeys+1)
	for k := range nkeys {
		at := start[k]
		for _, c := range counts {
			at, c[k] = at+c[k], at // c[k] becomes where this range's rows of key k go
		}
		start[k+1] = at
	}
	out := make([]asofOrd, start[nkeys])
	inRanges(ranges, func(p, lo, hi int) {
		next := counts[p]
		for i := lo; i < hi; i++ {
			if k := keys[i]; k >= 0 {
				out[next[k]] = row(k, int32(i))
				next[k]++
			}
		}
	})
	inRanges(splitRange(nkeys), func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			if seg := out[start[k]:start[k+1]]; len(seg) > 1 {
				slices.SortFunc(seg, byTimeIdx)
			}
		}
	})
	return out
}

// splitRange cuts [0, n) into as many ranges as there are cores (one for small n).
func splitRange(n int) [][2]int {
	parts := min(runtime.GOMAXPROCS(0), max(n/4096, 1))
	out := make([][2]int, parts)
	for p := range out {
		out[p] = [2]int{n * p / parts, n * (p + 1) / parts}
	}
	return out
}

// inRanges runs work on each range at once, one goroutine a range.
func inRanges(ranges [][2]int, work func(p, lo, hi int)) {
	var wg sync.WaitGroup
	for p, r := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(p, r[0], r[1])
		}()
	}
	wg.Wait()
}

// keyIndex interns the entity keys into small ids. Lookups (ten million feature keys in the
// benchmark) go through an open-addressing table of 32-byte slots, each holding a key's hash,
// its id and, for keys of up to 19 bytes, the key itself, so a lookup reads one slot and the
// key asked for, not strings spread over the heap; longer keys are checked against a copy of
// every key's bytes kept side by side.
type keyIndex struct {
	seed  maphash.Seed
	slots []keySlot // a power of two, at most half full
	arena []byte
	ends  []int // key id's bytes: arena[ends[id-1]:ends[id]]
}

const inlineKey = 19

type keySlot struct {
	hash uint64
	id   int32 // id+1: 0 is an empty slot
	n    uint8
	key  [inlineKey]byte
}

func newKeyIndex(hint int) *keyIndex {
	ki := &keyIndex{seed: maphash.MakeSeed()}
	ki.slots = make([]keySlot, tableSize(hint))
	return ki
}

func tableSize(keys int) int {
	n := 64
	for n < 2*keys {
		n *= 2
	}
	return n
}

func (ki *keyIndex) len() int { return len(ki.ends) }

func (ki *keyIndex) key(id int32) []byte {
	lo := 0
	if id > 0 {
		lo = ki.ends[id-1]
	}
	return ki.arena[lo:ki.ends[id]]
}

// find is the slot of key k (hash h): its own, or the empty one where it would go.
func (ki *keyIndex) find(k string, h uint64) *keySlot {
	mask := uint64(len(ki.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &ki.slots[i]
		if sl.id == 0 {
			return sl
		}
		if sl.hash != h || int(sl.n) != min(len(k), inlineKey+1) {
			continue
		}
		if len(k) <= inlineKey {
			if string(sl.key[:len(k)]) == k {
				return sl
			}
		} else if string(ki.key(sl.id-1)) == k {
			return sl
		}
	}
}

// intern is the key's id, a new one for a key not seen yet.
func (ki *keyIndex) intern(k string) int32 {
	h := maphash.String(ki.seed, k)
	sl := ki.find(k, h)
	if sl.id != 0 {
		return sl.id - 1
	}
	id := int32(len(ki.ends))
	ki.arena = append(ki.arena, k...)
	ki.ends = append(ki.ends, len(ki.arena))
	*sl = keySlot{hash: h, id: id + 1, n: uint8(min(len(k), inlineKey+1))}
	copy(sl.key[:], k)
	if 2*len(ki.ends) > len(ki.slots) {
		ki.grow()
	}
	return id
}

// grow doubles the table.
func (ki *keyIndex) grow() {
	old := ki.slots
	ki.slots = make([]keySlot, 2*len(old))
	mask := uint64(len(ki.slots) - 1)
	for _, sl := range old {
		if sl.id == 0 {
			continue
		}
		i := sl.hash & mask
		for ki.slots[i].id != 0 {
			i = (i + 1) & mask
		}
		ki.slots[i] = sl
	}
}

// lookup is the key's id, -1 for a key never interned. Safe for concurrent use once the
// interning is done.
func (ki *keyIndex) lookup(k string) int32 {
	return ki.find(k, maphash.String(ki.seed, k)).id - 1
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
