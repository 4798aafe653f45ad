package predlog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/testsuite"
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
func TestRoundTripMinIO(t *testing.T) { roundTrip(t, testsuite.NewMinIOBucket(t)) }

func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	w := &Writer{ch: make(chan Record, 2), done: make(chan struct{})}
	drops := 0
	w.OnDrop = func() { drops++ }
	for range 5 {
		w.Add(Record{})
	}
	require.EqualValues(t, 3, w.Dropped())
	require.Equal(t, 3, drops)
}
