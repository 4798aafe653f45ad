package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
)

func TestChainDetectsDeletedAndAlteredRecords(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	l := Log{Store: mem}
	var wg sync.WaitGroup
	for i := range 20 { // concurrent writers share one chain without losing or sharing a position
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(ctx, fmt.Sprint("k", i), Record{Actor: "t", Action: "promote", Model: "demand", Version: i})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	again, err := l.Append(ctx, "k3", Record{Actor: "t", Action: "promote", Model: "demand", Version: 3})
	require.NoError(t, err)
	require.Equal(t, 3, again.Version, "a retried append returns the record already there")
	_, err = l.Append(ctx, "other", Record{Actor: "t", Action: "register", Model: "returns"})
	require.NoError(t, err)
	since := time.Now().Add(-time.Hour)
	reps, probs, err := l.Verify(ctx, since)
	require.NoError(t, err)
	require.Empty(t, probs)
	require.Len(t, reps, 2, "one chain per model and day")
	require.Equal(t, 20, reps[0].Records)
	require.Equal(t, int64(20), reps[0].LastSeq)
	recs, err := l.List(ctx, "demand", since)
	require.NoError(t, err)
	require.Len(t, recs, 20)

	day := time.Now().UTC()
	// An altered record: its digest no longer matches the next record's prev.
	key := posKey(day, "demand", 7)
	data, _, err := objstore.ReadAll(ctx, mem, key)
	require.NoError(t, err)
	altered := []byte(strings.Replace(string(data), `"actor":"t"`, `"actor":"mallory"`, 1))
	require.NotEqual(t, data, altered)
	_, err = mem.Put(ctx, key, altered, objstore.PutOptions{})
	require.NoError(t, err)
	_, probs, err = l.Verify(ctx, since)
	require.NoError(t, err)
	require.Len(t, probs, 1)
	require.Contains(t, probs[0].What, "record 8 does not follow record 7")
	_, err = mem.Put(ctx, key, data, objstore.PutOptions{})
	require.NoError(t, err)

	// A deleted record: a gap.
	require.NoError(t, mem.Delete(ctx, posKey(day, "demand", 12)))
	_, probs, err = l.Verify(ctx, since)
	require.NoError(t, err)
	require.NotEmpty(t, probs)
	require.Contains(t, probs[0].What, "records 12 to 12 are missing")

	// The last record deleted: the head says the chain was longer.
	tail := Log{Store: objstore.NewMem()}
	for i := range 3 {
		_, err := tail.Append(ctx, fmt.Sprint("t", i), Record{Actor: "t", Action: "x", Model: "m"})
		require.NoError(t, err)
	}
	require.NoError(t, tail.Store.Delete(ctx, posKey(day, "m", 3)))
	_, probs, err = tail.Verify(ctx, since)
	require.NoError(t, err)
	require.Len(t, probs, 1)
	require.Contains(t, probs[0].What, "head is at record 3")
}
