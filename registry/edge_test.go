package registry

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

func TestEdgeBundlesMem(t *testing.T)   { edgeBundles(t, objstore.NewMem()) }
func TestEdgeBundlesMinIO(t *testing.T) { edgeBundles(t, stack.NewMinIOBucket(t)) }

// Every registered version with an int8 variant gets a bundle signed by the registry's key,
// its counter above every earlier bundle's of the model; a retry finds the same bundle and
// counter; a device loads it and answers as the int8 variant; the issue is audited.
func edgeBundles(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	r := New(b)
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	art, int8Art, prof := withInt8(t)
	q, err := model.Unmarshal(int8Art)
	require.NoError(t, err)

	var last uint64
	for _, run := range []string{"run-1", "run-2", "run-3"} {
		v, err := r.Register(ctx, version(run), art, prof, nil, Variant{Name: "int8", Artifact: int8Art})
		require.NoError(t, err)
		issued, err := r.IssueEdgeBundle(ctx, "demand", v.Version, int8Art, map[string][2]float64{"x": {0, 10}}, key)
		require.NoError(t, err)
		require.Greater(t, issued.Counter, last, "counters rise")
		last = issued.Counter
		again, err := r.IssueEdgeBundle(ctx, "demand", v.Version, int8Art, map[string][2]float64{"x": {0, 10}}, key)
		require.NoError(t, err)
		require.Equal(t, issued, again, "a retry issues nothing new")

		data, _, err := objstore.ReadAll(ctx, b, EdgeBundleKey("demand", v.Version))
		require.NoError(t, err)
		require.Equal(t, issued.Bytes, len(data))
		dev, err := edge.Load(data, edge.Options{Keys: []ed25519.PublicKey{pub}, Installed: issued.Counter - 1, Features: []string{"x"}})
		require.NoError(t, err)
		require.Equal(t, v.Version, dev.Manifest.Version)
		require.Equal(t, v.ArtifactSHA256, dev.Manifest.ArtifactSHA256)
		require.Equal(t, [2]float64{0, 10}, [2]float64{dev.Features()[0].Min, dev.Features()[0].Max}, "the contract's range")
		for _, x := range []float64{-3, 0, 2.5, 7, 1e6, math.NaN()} {
			got, err := dev.Predict([]float64{x})
			require.NoError(t, err)
			require.Equal(t, math.Float64bits(q.Predict([]float64{x})), math.Float64bits(got), "x=%v", x)
		}
		// An older bundle of the model is refused once this one is installed.
		if v.Version > 1 {
			old, _, err := objstore.ReadAll(ctx, b, EdgeBundleKey("demand", v.Version-1))
			require.NoError(t, err)
			_, err = edge.Load(old, edge.Options{Keys: []ed25519.PublicKey{pub}, Installed: issued.Counter})
			require.ErrorContains(t, err, "older than the installed")
			require.False(t, bytes.Equal(old, data))
		}
	}
	recs, err := r.Audit.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	n := 0
	for _, rec := range recs {
		if rec.Action == "edge_bundle" {
			n++
			require.Equal(t, edge.KeyID(pub), rec.Details["key_id"])
		}
	}
	require.Equal(t, 3, n, "one audit record a bundle")
	_, err = r.IssueEdgeBundle(ctx, "demand", 1, []byte("not a model"), nil, key)
	require.ErrorContains(t, err, "the int8 variant")
}

// withInt8 is the test artifact, its int8 variant and a reference profile of its feature.
func withInt8(t *testing.T) (art, int8Art []byte, prof drift.Profile) {
	art = artifact(t)
	m, err := model.Unmarshal(art)
	require.NoError(t, err)
	q, err := m.Quantise()
	require.NoError(t, err)
	int8Art, err = q.Marshal()
	require.NoError(t, err)
	prof, err = drift.NewProfile([]string{"x"}, [][]float64{{1, 2, 3}})
	require.NoError(t, err)
	return art, int8Art, prof
}
