package serving

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// During a canary every request carries both models' answers in the log: the one that
// answered under its route, the other under "paired", scored after the answer was sent.
func TestPairedScoringLogsBothAnswers(t *testing.T) {
	for _, mode := range []spec.CanaryMode{spec.ModeSplit, spec.ModeShadow} {
		t.Run(string(mode), func(t *testing.T) {
			b := objstore.NewMem()
			r := registry.New(b)
			s, _ := newServer(t, b)
			v1 := register(t, r, "r1", 2, false) // y = 2x
			v2 := register(t, r, "r2", 3, false) // y = 3x
			_, err := r.UpdateDeployment(context.Background(), "demand", registry.Change{Action: "test", Key: "k"}, func(d *registry.Deployment) (bool, error) {
				d.Production, d.Canary, d.CanaryShare, d.CanaryMode = v1, v2, 0.3, mode
				return true, nil
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.Start(ctx)
			const n = 300
			onPath := 0 // shadow: requests in the share are scored by both on their path
			for i := range n {
				key := fmt.Sprintf("store-%d", i)
				if mode == spec.ModeShadow && InCanary(key, 0.3) {
					onPath++
				}
				res, err := s.Score(ctx, ScoreRequest{Model: "demand", RequestID: fmt.Sprintf("q%d", i), RoutingKey: key,
					Rows: []map[string]float64{{"x": float64(1 + i%4)}}, Start: time.Now()})
				require.NoError(t, err)
				require.Len(t, res.Predictions, 1)
			}
			require.Eventually(t, func() bool {
				return testutil.ToFloat64(s.metrics.Paired.WithLabelValues("demand", "scored")) == float64(n-onPath)
			}, 10*time.Second, 10*time.Millisecond)
			require.Zero(t, testutil.ToFloat64(s.metrics.Paired.WithLabelValues("demand", "dropped")))
			s.Close()
			recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
			require.NoError(t, err)
			type both struct{ v1, v2 []float64 }
			by := map[string]*both{}
			paired := 0
			for _, rec := range recs {
				bt := by[rec.RequestID]
				if bt == nil {
					bt = &both{}
					by[rec.RequestID] = bt
				}
				if rec.Version == int32(v1) {
					bt.v1 = append(bt.v1, rec.Prediction)
				} else {
					bt.v2 = append(bt.v2, rec.Prediction)
				}
				if rec.Route == string(pipeline.RoutePaired) {
					paired++
				}
			}
			require.Len(t, by, n)
			require.Equal(t, n-onPath, paired)
			for i := range n {
				bt := by[fmt.Sprintf("q%d", i)]
				x := float64(1 + i%4)
				require.Len(t, bt.v1, 1, "request q%d: exactly one answer of v1", i)
				require.Len(t, bt.v2, 1, "request q%d: exactly one answer of v2", i)
				require.InDelta(t, 2*x, bt.v1[0], 1e-6)
				require.InDelta(t, 3*x, bt.v2[0], 1e-6)
			}
		})
	}
}

// Pairing never holds a request up: with no worker draining the queue, requests are answered
// and the pairs beyond the queue are dropped and counted. Without a canary nothing is paired.
func TestPairingShedsUnderOverload(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, _ := newServer(t, b)
	defer s.Close()
	v1, v2 := register(t, r, "r1", 2, false), register(t, r, "r2", 3, false)
	deploy(t, r, v1, 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background())) // no Start: no pair worker
	score := func(i int) {
		_, err := s.Score(context.Background(), ScoreRequest{Model: "demand", RequestID: fmt.Sprint(i), RoutingKey: fmt.Sprint(i),
			Rows: []map[string]float64{{"x": 1}}, Start: time.Now()})
		require.NoError(t, err)
	}
	for i := range 100 {
		score(i)
	}
	require.Zero(t, len(s.pairs), "no canary, no pairs")
	deploy(t, r, v1, v2, 0.5)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	const n = pairQueue + 500
	for i := range n {
		score(i)
	}
	require.Equal(t, pairQueue, len(s.pairs))
	require.Equal(t, 500.0, testutil.ToFloat64(s.metrics.Paired.WithLabelValues("demand", "dropped")))
}
