package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/testsuite"
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
	const racers = 16
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
	promote := func(v int) func(*Deployment) error {
		return func(d *Deployment) error {
			if d.Production == v {
				return nil
			}
			d.Previous, d.Production, d.Canary, d.CanaryShare = d.Production, v, 0, 0
			return nil
		}
	}
	d, err = r.UpdateDeployment(ctx, "demand", Change{Action: "promote", Actor: "t", Key: "p1"}, promote(1))
	require.NoError(t, err)
	require.Equal(t, 1, d.Production)

	// Racing writers: every update lands exactly once, none is lost.
	var wg2 sync.WaitGroup
	for i := range 8 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			_, err := r.UpdateDeployment(ctx, "demand", Change{Action: "bump", Actor: "t", Key: fmt.Sprint("bump", i)}, func(d *Deployment) error {
				d.CanaryShare += 0.01
				return nil
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

	_, err = r.UpdateDeployment(ctx, "demand", Change{Action: "x", Key: "refuse"}, func(*Deployment) error {
		return fmt.Errorf("canary is not v9: %w", ErrConflict)
	})
	require.ErrorIs(t, err, ErrConflict)
	recs, err := r.Audit.List(ctx, "demand", v1.CreatedAt.Add(-1))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), racers+1+1+8)
}

func TestRegistryMem(t *testing.T)   { registryContract(t, objstore.NewMem()) }
func TestRegistryMinIO(t *testing.T) { registryContract(t, testsuite.NewMinIOBucket(t)) }
