package predlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
)

func roundTrip(t *testing.T, b objstore.Bucket) {
	w := NewWriter(b, "r1", 1000, 50, 20*time.Millisecond)
	start := time.UnixMilli(time.Now().Add(-time.Second).UnixMilli())
	for i := range 120 {
		w.Add(Record{RequestID: fmt.Sprint(i), TimeUnixMs: start.Add(time.Duration(i) * time.Millisecond).UnixMilli(),
			Model: "demand", Version: 1, Route: "production", LatencyUs: int64(i)})
	}
	w.Close()
	require.EqualValues(t, 120, w.Written())
	require.Zero(t, w.Dropped())
	recs, err := Read(context.Background(), b, "demand", start, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Len(t, recs, 120)
	recs, err = Read(context.Background(), b, "demand", start.Add(100*time.Millisecond), time.Now())
	require.NoError(t, err)
	require.Len(t, recs, 20, "reads filter by time")
}

func TestRoundTripMem(t *testing.T)   { roundTrip(t, objstore.NewMem()) }
func TestRoundTripMinIO(t *testing.T) { roundTrip(t, stack.NewMinIOBucket(t)) }

func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	w := &Writer[Record]{ch: make(chan Record, 2), done: make(chan struct{})}
	drops := 0
	w.OnDrop = func() { drops++ }
	for range 5 {
		w.Add(Record{})
	}
	require.EqualValues(t, 3, w.Dropped())
	require.Equal(t, 3, drops)
}

func TestPredictionDriftUsesTheDriftSuite(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	r := rand.New(rand.NewPCG(1, 2))
	holdout := make([]float64, 5000)
	for i := range holdout {
		holdout[i] = 10 + 2*r.NormFloat64()
	}
	ref, err := drift.NewProfile([]string{drift.PredictionFeature}, [][]float64{holdout})
	require.NoError(t, err)
	start := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	write := func(version int32, shift float64, n int, withErrors bool) {
		var recs []Record
		for i := range n {
			rec := Record{RequestID: fmt.Sprint(version, shift, i), TimeUnixMs: start.UnixMilli() + int64(i%1000), Model: "demand",
				Version: version, Route: "production", Prediction: 10 + shift + 2*r.NormFloat64()}
			if withErrors && i%2 == 0 {
				rec.Error, rec.Prediction = "missing feature", 0
			}
			recs = append(recs, rec)
		}
		data, err := dataset.EncodeParquet(recs)
		require.NoError(t, err)
		_, err = b.Put(ctx, fmt.Sprintf("%spart-%d.parquet", Prefix("demand", start), time.Now().UnixNano()), data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	write(1, 0, 3000, true)  // errors carry no prediction: they must be left out
	write(2, 3, 3000, false) // another version: left out
	rep, n, err := Drift(ctx, b, "demand", 1, ref, start, time.Now(), drift.DefaultConfig())
	require.NoError(t, err)
	require.Equal(t, 1500, n)
	require.False(t, rep.Drifted, rep.Why)
	rep, n, err = Drift(ctx, b, "demand", 2, ref, start, time.Now(), drift.DefaultConfig())
	require.NoError(t, err)
	require.Equal(t, 3000, n)
	require.True(t, rep.Features[0].Drifted, rep.Features[0].Why)
	require.Equal(t, drift.PredictionFeature, rep.Features[0].Name)
}

// A record's partition names the same prefix as its own time does, around day boundaries
// and before 1970 too.
func TestPartitionsNameTheRecordsDay(t *testing.T) {
	day := int64(msPerDay)
	for _, ms := range []int64{0, 1, day - 1, day, day + 1, -1, -day, -day - 1, 1_700_000_000_123, 1_700_006_399_999} {
		p := partitionOf("demand", ms)
		require.Equal(t, Prefix("demand", time.UnixMilli(ms)), Prefix(p.model, p.start()), "ms %d", ms)
	}
}

// down is a bucket whose writes fail while down is set, as during a storage restart.
type down struct {
	objstore.Bucket
	down atomic.Bool
	gets atomic.Int64
}

func (d *down) Put(ctx context.Context, key string, body []byte, o objstore.PutOptions) (objstore.Object, error) {
	if d.down.Load() {
		return objstore.Object{}, errors.New("connection refused")
	}
	return d.Bucket.Put(ctx, key, body, o)
}

func (d *down) Get(ctx context.Context, key string, o objstore.GetOptions) (io.ReadCloser, objstore.Object, error) {
	d.gets.Add(1)
	return d.Bucket.Get(ctx, key, o)
}

// A storage outage loses no record the buffer can hold: failed writes are kept and written at
// the next flush once storage is back.
func TestFlushRetriesAfterAStorageOutage(t *testing.T) {
	b := &down{Bucket: objstore.NewMem()}
	b.down.Store(true)
	w := NewWriter(b, "r1", 1000, 50, 10*time.Millisecond)
	start := time.UnixMilli(time.Now().UnixMilli())
	for i := range 200 {
		w.Add(Record{RequestID: fmt.Sprint(i), TimeUnixMs: start.UnixMilli(), Model: "demand", Version: 1})
	}
	time.Sleep(100 * time.Millisecond) // several flushes fail
	require.Zero(t, w.Written())
	b.down.Store(false)
	require.Eventually(t, func() bool { return w.Written() == 200 }, 5*time.Second, 10*time.Millisecond)
	w.Close()
	require.Zero(t, w.Dropped())
	recs, err := Read(context.Background(), b, "demand", start, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Len(t, recs, 200)

	// An outage longer than the buffer holds drops the oldest and counts them; Close gives up
	// after a few tries and counts the rest.
	b.down.Store(true)
	w = NewWriter(b, "r1", 100, 50, 10*time.Millisecond)
	for i := range 300 {
		w.Add(Record{RequestID: fmt.Sprint(i), TimeUnixMs: start.UnixMilli(), Model: "demand", Version: 1})
		time.Sleep(50 * time.Microsecond)
	}
	w.Close()
	require.Zero(t, w.Written())
	require.EqualValues(t, 300, w.Dropped(), "every lost record is counted")
}

// Reads open only the parts written since the start of the window (the canary re-reads its
// log at every bake; its cost must not grow with the day's log).
func TestReadSkipsPartsWrittenBeforeTheWindow(t *testing.T) {
	b := &down{Bucket: objstore.NewMem()}
	w := NewWriter(b, "r1", 1000, 1, time.Hour) // one part per record
	old := time.Now().Add(-time.Minute)
	for i := range 20 {
		w.Add(Record{RequestID: fmt.Sprint("old", i), TimeUnixMs: old.UnixMilli(), Model: "demand"})
	}
	require.Eventually(t, func() bool { return w.Written() == 20 }, 5*time.Second, time.Millisecond)
	since := time.Now()
	time.Sleep(5 * time.Millisecond)
	for i := range 3 {
		w.Add(Record{RequestID: fmt.Sprint("new", i), TimeUnixMs: time.Now().UnixMilli(), Model: "demand"})
	}
	w.Close()
	b.gets.Store(0)
	recs, err := Read(context.Background(), b, "demand", since, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Len(t, recs, 3)
	window := b.gets.Load()
	b.gets.Store(0)
	all, err := Read(context.Background(), b, "demand", old.Add(-time.Second), time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Len(t, all, 23)
	require.Equal(t, window*23/3, b.gets.Load(), "only the 3 parts written in the window were opened")
	require.True(t, writtenBefore("predictions/demand/dt=2026-12-01/part-1-r1-000001.parquet", since))
	require.False(t, writtenBefore("predictions/demand/dt=2026-12-01/odd-name.parquet", since))
}
