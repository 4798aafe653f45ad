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

// Objects nobody appended cannot block a chain or break its verification: an object planted
// at the chain's next position is skipped by the next writer (which chains to its digest) and
// named as planted by Verify, as are keys that are not positions; a model name that is not a
// name never becomes part of a key. A record altered after the fact is still a break.
func TestPlantedObjectsAreNamedAndNeverBlockTheChain(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	l := Log{Store: mem}
	first, err := l.Append(ctx, "a", Record{Actor: "t", Action: "promote", Model: "demand"})
	require.NoError(t, err)
	next := posKey(first.Time, "demand", 2)
	_, err = mem.Put(ctx, next, []byte("planted at the next position"), objstore.PutOptions{})
	require.NoError(t, err)
	stray := chainPrefix(first.Time, "demand") + "000000000005.json/000000000001.json"
	_, err = mem.Put(ctx, stray, []byte("{}"), objstore.PutOptions{})
	require.NoError(t, err)
	for i := range 3 {
		r, err := l.Append(ctx, fmt.Sprint("b", i), Record{Actor: "t", Action: "promote", Model: "demand", Version: i})
		require.NoError(t, err, "the chain keeps taking records")
		require.NotEqual(t, int64(2), r.Seq)
	}
	bad, err := l.Append(ctx, "c", Record{Actor: "anonymous", Action: "promote_invalid", Model: "demand/000000000009.json"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(Key(bad), chainPrefix(bad.Time, InvalidChain)), Key(bad))
	reps, probs, err := l.Verify(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, probs, "planted objects are not breaks")
	var planted []string
	for _, r := range reps {
		planted = append(planted, r.Planted...)
	}
	require.ElementsMatch(t, []string{next, stray}, planted)

	// An object planted past the head is named too; an altered record is a break.
	past := posKey(first.Time, "demand", 99)
	_, err = mem.Put(ctx, past, []byte("past the head"), objstore.PutOptions{})
	require.NoError(t, err)
	_, err = mem.Put(ctx, Key(first), []byte(`{"id":"x","actor":"mallory"}`), objstore.PutOptions{})
	require.NoError(t, err)
	reps, probs, err = l.Verify(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, probs, 2, "%v", probs)
	require.Contains(t, probs[0].What+probs[1].What, "altered")
	planted = nil
	for _, r := range reps {
		planted = append(planted, r.Planted...)
	}
	require.Contains(t, planted, past)
}
