package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

func artifact(t *testing.T) []byte {
	t.Helper()
	lin, err := model.TrainRidge([][]float64{{1, 2, 3, 4}}, []float64{2, 4, 6, 8}, 0)
	require.NoError(t, err)
	data, err := (&model.Model{Family: "linear", Trainer: "ridge", Features: []string{"x"}, Target: "y", Linear: lin}).Marshal()
	require.NoError(t, err)
	return data
}

func version(run string) Version {
	return Version{Model: "demand", Lineage: Lineage{RunID: run, CreatedBy: "test"}, Metrics: map[string]float64{"holdout_mae": 1}}
}

func registryContract(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	r := New(b)
	art := artifact(t)
	prof, err := drift.NewProfile([]string{"x"}, [][]float64{{1, 2, 3}})
	require.NoError(t, err)

	v1, err := r.Register(ctx, version("run-a"), art, prof, nil)
	require.NoError(t, err)
	require.Equal(t, 1, v1.Version)
	again, err := r.Register(ctx, version("run-a"), art, prof, nil)
	require.NoError(t, err)
	require.Equal(t, 1, again.Version, "a retried registration returns the same version")

	// Racing registrations get distinct numbers without gaps.
	const racers = 32
	var wg sync.WaitGroup
	nums := make([]int, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := r.Register(ctx, version(fmt.Sprintf("race-%d", i)), art, prof, nil)
			nums[i], errs[i] = v.Version, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	sort.Ints(nums)
	for i, n := range nums {
		require.Equal(t, i+2, n)
	}
	all, err := r.Versions(ctx, "demand")
	require.NoError(t, err)
	require.Len(t, all, racers+1)

	m, err := r.LoadModel(ctx, "demand", 1)
	require.NoError(t, err)
	require.InDelta(t, 10, m.Predict([]float64{5}), 1e-9)
	_, err = r.LoadModel(ctx, "demand", 999)
	require.ErrorIs(t, err, ErrNotFound)

	// Deployment pointer: first write creates, later ones compare-and-swap.
	d, etag, err := r.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Empty(t, etag)
	require.Zero(t, d.Production)
	d, err = r.UpdateDeployment(ctx, "demand", Change{Action: TransPromote, Actor: "t", Key: "p1"}, func(d *Deployment) (bool, error) { return d.Promote(1) })
	require.NoError(t, err)
	require.Equal(t, 1, d.Production)

	// Racing writers: every update lands exactly once, none is lost.
	var wg2 sync.WaitGroup
	for i := range 8 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			_, err := r.UpdateDeployment(ctx, "demand", Change{Action: "bump", Actor: "t", Key: fmt.Sprint("bump", i)}, func(d *Deployment) (bool, error) {
				d.CanaryShare += 0.01
				return true, nil
			})
			if err != nil && !errors.Is(err, ErrConflict) {
				t.Errorf("update: %v", err)
			}
		}()
	}
	wg2.Wait()
	d, _, err = r.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.InDelta(t, 0.08, d.CanaryShare, 1e-9, "no lost update")

	_, err = r.UpdateDeployment(ctx, "demand", Change{Action: "x", Key: "refuse"}, func(*Deployment) (bool, error) {
		return false, fmt.Errorf("canary is not v9: %w", ErrConflict)
	})
	require.ErrorIs(t, err, ErrConflict)
	recs, err := r.Audit.List(ctx, "demand", v1.CreatedAt.Add(-1))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), racers+1+1+8)
}

func TestRegistryMem(t *testing.T)   { registryContract(t, objstore.NewMem()) }
func TestRegistryMinIO(t *testing.T) { registryContract(t, stack.NewMinIOBucket(t)) }

// Of 32 promotions racing from the same read, exactly one wins; the others are told why.
func racingPromotions(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	r := New(b)
	art := artifact(t)
	prof, err := drift.NewProfile([]string{"x"}, [][]float64{{1, 2, 3}})
	require.NoError(t, err)
	for i := range 3 {
		_, err := r.Register(ctx, version(fmt.Sprint("p", i)), art, prof, nil)
		require.NoError(t, err)
	}
	_, etag, err := r.Deployment(ctx, "demand")
	require.NoError(t, err)
	d, err := r.PromoteIf(ctx, "demand", 1, etag, Change{Actor: "alice", Key: "first"})
	require.NoError(t, err)
	require.Equal(t, 1, d.Production)
	_, etag, err = r.Deployment(ctx, "demand")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.PromoteIf(ctx, "demand", 2+i%2, etag, Change{Actor: fmt.Sprint("op", i), Key: fmt.Sprint("race", i)})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, ErrConflict)
		require.Contains(t, err.Error(), "read it again")
	}
	require.Equal(t, 1, wins, "exactly one promotion wins")
	d, etag, err = r.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, d.Previous)
	// Rollback restores the previous production through the same compare-and-swap.
	_, err = r.RollbackIf(ctx, "demand", `"stale"`, Change{Actor: "alice", Key: "rb-stale"})
	require.ErrorIs(t, err, ErrConflict)
	rolled, err := r.RollbackIf(ctx, "demand", etag, Change{Actor: "alice", Reason: "bad metrics", Key: "rb"})
	require.NoError(t, err)
	require.Equal(t, 1, rolled.Production)
	require.Equal(t, d.Production, rolled.Previous)
	_, etag, err = r.Deployment(ctx, "demand")
	require.NoError(t, err)
	d, err = r.SetAliasIf(ctx, "demand", "challenger", 3, etag, Change{Actor: "alice", Key: "alias"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"challenger": 3}, d.Aliases)
	_, err = r.SetAliasIf(ctx, "demand", "production", 3, "", Change{Key: "x"})
	require.ErrorIs(t, err, ErrConflict)
	_, err = r.PromoteIf(ctx, "demand", 99, etag, Change{Key: "y"})
	require.ErrorIs(t, err, ErrNotFound)
	recs, err := r.Audit.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var acts []string
	for _, rec := range recs {
		acts = append(acts, rec.Action)
	}
	require.Contains(t, acts, "rollback")
	require.Contains(t, acts, "set_alias")
}

func TestRacingPromotionsMem(t *testing.T)   { racingPromotions(t, objstore.NewMem()) }
func TestRacingPromotionsMinIO(t *testing.T) { racingPromotions(t, stack.NewMinIOBucket(t)) }
