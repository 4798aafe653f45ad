package features

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// oracle is the join's definition, by brute force: every row of the key is considered.
func oracle(e EntityRow, rows []FeatureRow, lookback time.Duration) Match {
	best := -1
	for i, r := range rows {
		if r.Key != e.Key || r.Event > e.At || r.Created > e.At || (lookback > 0 && r.Event <= e.At-lookback.Microseconds()) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := rows[best]
		if r.Event > b.Event || (r.Event == b.Event && r.Created >= b.Created) { // later in the source wins a full tie
			best = i
		}
	}
	if best < 0 {
		return Match{}
	}
	r := rows[best]
	return Match{Found: true, Event: r.Event, Created: r.Created, Values: r.Values}
}

// The join against the brute-force oracle on 100,000 random feature rows and 100,000 entity
// rows: backfills (values written long after their event), late arrivals, corrections (the
// same event written again later), exact ties, entity times on the lookback's edges and on
// created times, entities with no rows, future-dated events. Zero differences, and no match
// is ever a value known only after the entity row's time.
func TestAsOfMatchesTheOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 6615))
	const day = int64(24 * time.Hour / time.Microsecond)
	lookback := 7 * 24 * time.Hour
	keys := 2000
	var rows []FeatureRow
	for i := range 100_000 {
		k := fmt.Sprintf("store-%d", rng.IntN(keys))
		ev := int64(rng.IntN(90)) * day / 4 // quarter days over 90 days
		created := ev
		switch rng.IntN(10) {
		case 0: // a backfill: written up to 60 days later
			created += int64(rng.IntN(60)) * day
		case 1, 2: // a late arrival: hours late
			created += int64(rng.IntN(48)) * day / 24
		case 3: // a future-dated event (a forecast) known before it happens
			created -= int64(rng.IntN(3)) * day
		}
		rows = append(rows, FeatureRow{Key: k, Event: ev, Created: created, Values: []float64{float64(i)}})
		if rng.IntN(20) == 0 { // a correction of the same event, or an exact tie
			c := created + int64(rng.IntN(2))*day
			rows = append(rows, FeatureRow{Key: k, Event: ev, Created: c, Values: []float64{-float64(i)}})
		}
	}
	var ents []EntityRow
	for range 100_000 {
		k := fmt.Sprintf("store-%d", rng.IntN(keys+200)) // some entities have no rows
		var at int64
		switch rng.IntN(4) {
		case 0: // exactly on a row's event, created or lookback edge
			r := rows[rng.IntN(len(rows))]
			k = r.Key
			at = []int64{r.Event, r.Created, r.Event + lookback.Microseconds(), r.Event + lookback.Microseconds() - 1}[rng.IntN(4)]
		default:
			at = int64(rng.IntN(100*24)) * day / 24
		}
		ents = append(ents, EntityRow{Key: k, At: at})
	}
	byKey := map[string][]FeatureRow{} // the oracle still scans every row of the key
	for _, r := range rows {
		byKey[r.Key] = append(byKey[r.Key], r)
	}
	for _, lb := range []time.Duration{lookback, 0} {
		got := AsOf(ents, rows, lb)
		diffs, found := 0, 0
		for i, e := range ents {
			want := oracle(e, byKey[e.Key], lb)
			if want.Found != got[i].Found || want.Event != got[i].Event || want.Created != got[i].Created || (want.Found && want.Values[0] != got[i].Values[0]) {
				if diffs < 5 {
					t.Errorf("lookback %s, entity %s at %d: got %v, want %v", lb, e.Key, e.At, got[i], want)
				}
				diffs++
			}
			if got[i].Found {
				found++
				require.LessOrEqual(t, got[i].Created, e.At, "a value known only after the entity row's time")
				require.LessOrEqual(t, got[i].Event, e.At)
			}
		}
		require.Zero(t, diffs, "lookback %s", lb)
		require.Greater(t, found, len(ents)/3, "the test exercises matches, not only misses")
		t.Logf("lookback %s: %d entity rows, %d matched, 0 differences", lb, len(ents), found)
	}
}

// Feast's trap (feast-dev/feast#6615): a value for an event before T that was written
// after T must not be joined; the value known at T is.
func TestAsOfNeverUsesAValueWrittenAfterTheRowsTime(t *testing.T) {
	h := int64(time.Hour / time.Microsecond)
	rows := []FeatureRow{
		{Key: "a", Event: 1 * h, Created: 1 * h, Values: []float64{10}},
		{Key: "a", Event: 2 * h, Created: 9 * h, Values: []float64{20}}, // backfilled at 9h
		{Key: "a", Event: 1 * h, Created: 5 * h, Values: []float64{11}}, // a correction at 5h
	}
	got := AsOf([]EntityRow{{"a", 3 * h}, {"a", 6 * h}, {"a", 10 * h}, {"b", 10 * h}}, rows, 0)
	require.Equal(t, []float64{10}, got[0].Values, "at 3h only the first write is known")
	require.Equal(t, []float64{11}, got[1].Values, "at 6h the correction is known, the backfill is not")
	require.Equal(t, []float64{20}, got[2].Values, "at 10h the backfilled later event wins")
	require.False(t, got[3].Found)
	short := AsOf([]EntityRow{{"a", 3 * h}}, rows, 2*time.Hour)
	require.False(t, short[0].Found, "the event at 1h is not within 2h before 3h (event > T - lookback)")
}

// The join's key index against a map: keys of every length around the 19 bytes kept in a slot
// (and longer ones sharing those 19 bytes), the empty key, keys only the feature side has,
// and enough keys to grow the table many times; interning twice gives the same id.
func TestKeyIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 19))
	ki := newKeyIndex(4)
	want := map[string]int32{}
	var keys []string
	for i := range 50_000 {
		n := rng.IntN(40)
		if i%7 == 0 {
			n = 18 + rng.IntN(4) // 18-21 bytes: both sides of the inline limit
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = "ab"[rng.IntN(2)] // few letters: many keys share their first bytes
		}
		k := string(b)
		if _, ok := want[k]; !ok {
			want[k] = int32(len(want))
			keys = append(keys, k)
		}
		require.Equal(t, want[k], ki.intern(k), "%q", k)
	}
	require.Equal(t, len(want), ki.len())
	require.Contains(t, want, "", "the empty key is a key")
	for _, k := range keys {
		require.Equal(t, want[k], ki.lookup(k), "%q", k)
		require.Equal(t, want[k], ki.intern(k), "%q again", k)
	}
	for range 20_000 {
		k := fmt.Sprintf("c%d", rng.IntN(1_000_000)) // no interned key has a c
		require.Equal(t, int32(-1), ki.lookup(k), "%q", k)
	}
	require.LessOrEqual(t, 2*ki.len(), len(ki.slots), "the table is at most half full")
}
