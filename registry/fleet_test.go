package registry

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
)

// A device's place in a fleet's ramp never changes and spreads evenly: a 10% step holds about
// a tenth of 10,000 devices, a 50% step every one of them and about half in all; the candidate
// goes to exactly the devices below the share; another fleet orders the devices otherwise.
func TestDevicesRampByAStableHash(t *testing.T) {
	f := Fleet{Name: "stores", Stable: &Release{Version: 1}, Candidate: &Release{Version: 2}}
	in10, in50, moved := 0, 0, 0
	for i := range 10000 {
		d := fmt.Sprintf("device-%d", i)
		p := DeviceShare("stores", d)
		require.Equal(t, p, DeviceShare("stores", d))
		require.True(t, p >= 0 && p < 1)
		if p < 0.1 {
			in10++
		}
		if p < 0.5 {
			in50++
		}
		f.Share = 0.1
		at10 := f.Assign(d).Version
		f.Share = 0.5
		at50 := f.Assign(d).Version
		require.Equal(t, p < 0.1, at10 == 2, d)
		require.False(t, at10 == 2 && at50 != 2, "%s left the candidate when the share grew", d)
		if DeviceShare("depots", d) < 0.1 != (p < 0.1) {
			moved++
		}
	}
	require.InDelta(t, 1000, in10, 100, "10%% of 10,000")
	require.InDelta(t, 5000, in50, 150, "50%% of 10,000")
	require.Greater(t, moved, 1000, "another fleet's 10%% is other devices")
	f.Candidate = nil
	require.Equal(t, 1, f.Assign("device-1").Version, "no rollout: the stable release")
}

// Membership is by the token: the subject listed, or a group held.
func TestFleetMembership(t *testing.T) {
	f := Fleet{Members: []string{"device-7"}, Groups: []string{"edge-devices"}}
	require.True(t, f.Member("device-7", nil))
	require.True(t, f.Member("device-8", []string{"other", "edge-devices"}))
	require.False(t, f.Member("device-8", []string{"other"}))
	require.False(t, f.Member("", nil))
}

func TestFleetsMem(t *testing.T)   { fleets(t, objstore.NewMem()) }
func TestFleetsMinIO(t *testing.T) { fleets(t, stack.NewMinIOBucket(t)) }

// A fleet starts on the production version's registration bundle, and only once the model
// has one; its members change with an audited change; a version's bundle is signed again
// under a new counter per purpose (a retry gets the same), above every bundle before it, and
// loads on a device that holds the higher counter of a later version.
func fleets(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	r := New(b)
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	def := FleetDefinition{Groups: []string{"edge-devices"}}
	_, err = r.ApplyFleet(ctx, "demand", "stores", def, Change{Actor: "erin", Key: "apply-0"})
	require.ErrorIs(t, err, ErrNotFound, "no model yet")
	_, err = r.ApplyFleet(ctx, "demand", "stores", FleetDefinition{}, Change{Actor: "erin"})
	require.ErrorIs(t, err, ErrInvalid, "no members")
	_, err = r.ApplyFleet(ctx, "demand", "Stores!", def, Change{Actor: "erin"})
	require.ErrorIs(t, err, ErrInvalid, "a bad name")

	art, int8Art, prof := withInt8(t)
	for _, run := range []string{"run-1", "run-2"} {
		_, err := r.Register(ctx, version(run), art, prof, nil, Variant{Name: "int8", Artifact: int8Art})
		require.NoError(t, err)
	}
	_, err = r.UpdateDeployment(ctx, "demand", Change{Action: TransPromote, Key: "p1"}, func(d *Deployment) (bool, error) { return d.Promote(1) })
	require.NoError(t, err)
	_, err = r.ApplyFleet(ctx, "demand", "stores", def, Change{Actor: "erin", Key: "apply-1"})
	require.ErrorContains(t, err, "has no edge bundle", "production has no bundle yet")
	v1, err := r.IssueEdgeBundle(ctx, "demand", 1, int8Art, nil, key)
	require.NoError(t, err)
	v2, err := r.IssueEdgeBundle(ctx, "demand", 2, int8Art, nil, key)
	require.NoError(t, err)

	f, err := r.ApplyFleet(ctx, "demand", "stores", def, Change{Actor: "erin", Key: "apply-2"})
	require.NoError(t, err)
	require.Equal(t, &Release{Version: 1, Bundle: EdgeBundleKey("demand", 1), Counter: v1.Counter}, f.Stable)
	def.Members = []string{"device-x"}
	f, err = r.ApplyFleet(ctx, "demand", "stores", def, Change{Actor: "erin", Key: "apply-3"})
	require.NoError(t, err)
	require.Equal(t, []string{"device-x"}, f.Members)
	require.Equal(t, 1, f.Stable.Version, "members change, the release does not")
	list, err := r.Fleets(ctx, "demand")
	require.NoError(t, err)
	require.Len(t, list, 1)

	again, err := r.ReissueEdgeBundle(ctx, "demand", 1, "rollback of rollout a", key)
	require.NoError(t, err)
	require.Greater(t, again.Counter, v2.Counter, "above v2's bundle")
	retry, err := r.ReissueEdgeBundle(ctx, "demand", 1, "rollback of rollout a", key)
	require.NoError(t, err)
	require.Equal(t, again, retry, "a retry signs nothing new")
	data, _, err := objstore.ReadAll(ctx, b, again.Bundle)
	require.NoError(t, err)
	dev, err := edge.Load(data, edge.Options{Keys: []ed25519.PublicKey{pub}, Installed: v2.Counter})
	require.NoError(t, err, "a device on v2 takes v1 back")
	require.Equal(t, 1, dev.Manifest.Version)
	_, other, _ := ed25519.GenerateKey(nil)
	_, err = r.ReissueEdgeBundle(ctx, "demand", 1, "rotated", other)
	require.ErrorContains(t, err, "does not verify with this worker's key")

	recs, err := audit.Log{Store: b}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	applied := 0
	for _, rec := range recs {
		if rec.Action == string(TransFleetApply) {
			applied++
			require.Equal(t, "erin", rec.Actor)
		}
	}
	require.Equal(t, 2, applied, "the fleet's creation and its change of members")
}

// The sketch reference thins the bins of a wide model so that a sketch of 10,000 predictions
// stays under 8 KB, and keeps every bin of a narrow one.
func TestSketchReferenceFitsTheBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, features := range []int{1, 20, 100, 300} {
		names, cols := make([]string, features), make([][]float64, features)
		for i := range features {
			names[i] = fmt.Sprintf("a_rather_long_feature_name_%03d", i)
			cols[i] = make([]float64, 2000)
			for j := range cols[i] {
				cols[i][j] = rng.NormFloat64()
			}
		}
		p, err := drift.NewProfile(names, cols)
		require.NoError(t, err)
		ref := SketchReference(p, 4)
		if features <= 20 {
			require.Equal(t, p.Features[0].Edges, ref.Features[0].Edges, "%d features: every bin", features)
		}
		s := agent.NewSketcher(ref, names)
		x := make([]float64, features)
		for range agent.SketchRows {
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			s.Add(x)
		}
		raw, err := json.Marshal(agent.Record{Time: time.Now(), Kind: "sketch", ID: "sketch-1", Version: 4, Sketch: s.Take(time.Hour)})
		require.NoError(t, err)
		require.LessOrEqual(t, len(raw), agent.SketchMaxBytes, "%d features", features)
	}
}
