package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/serving"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
)

// wideConfig is the wide table of the 1,000-feature test: 300 rows a day for 14 days; from
// day 10 on the first 10 features move by one standard deviation.
func wideConfig() dataset.WideConfig {
	return dataset.WideConfig{Features: 1000, RowsPerDay: 300, Days: 14, Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		ShiftDay: 10, Shifted: 10, Shift: 1, Seed: 7}
}

// wideSpec is the demo's spec on the wide table: its 1,000 features, gbdt, no approval, a
// one-step canary that rolls back when no traffic comes, and the window read as partitions of
// 4 day files.
func wideSpec(t *testing.T, cfg dataset.WideConfig) spec.Spec {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Model, sp.Features, sp.Target, sp.Contract = "wide", cfg.FeatureNames(), "y", cfg.Contract()
	sp.Dataset.Name, sp.Dataset.EventTime, sp.Dataset.Keys = "wide", "date", []string{"id"}
	sp.Dataset.WindowDays, sp.Dataset.HoldoutDays, sp.Dataset.PartitionFiles = 10, 2, 4
	sp.Trainer.Params["trees"], sp.Trainer.Params["max_depth"] = 40, 4
	sp.Fairness, sp.Evaluation.SegmentBy = spec.Fairness{}, ""
	sp.Evaluation.MaxMAE, sp.Evaluation.MaxRegression = 5, 1
	sp.Approval.Required = false
	sp.Drift.DriftShare = 0.005 // 5 of 1,000 features moved start a retrain
	sp.Canary.Steps, sp.Canary.Bake.Duration, sp.Canary.MaxBakes = []float64{0.5}, time.Second, 1
	// The monitor's windows every 10 s; drifted windows are reported, the loop is started by
	// the test, not by them.
	sp.Monitoring.Interval.Duration, sp.Monitoring.Settle.Duration = 10*time.Second, 2*time.Second
	sp.Monitoring.MinRequests, sp.Monitoring.DriftWindows = 50, 1000
	raw, err := yaml.Marshal(sp) // through the parser: its defaults and checks
	require.NoError(t, err)
	parsed, err := spec.Parse(raw)
	require.NoError(t, err)
	return parsed
}

// A model on a table of 1,000 features runs the whole loop on the Temporal dev server with
// the worker and serving as their own processes: the first run validates every column,
// trains gbdt, evaluates, registers and promotes; serving answers with the TreeSHAP values of
// all 1,000 features, summing to the prediction; the second run's window has 10 features
// moved, read as partitions, and its drift report names exactly those 10 among 1,000 (with
// the Benjamini-Hochberg correction across all of them); the run retrains, registers v2 and
// takes it to the canary, which rolls it back for want of traffic (none is sent).
func TestAThousandFeaturesEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-wide")
	cfg := wideConfig()
	written, err := dataset.WriteWide(ctx, st.Store, "wide", cfg)
	require.NoError(t, err)
	require.Equal(t, cfg.Days, written)
	sp := wideSpec(t, cfg)
	require.NoError(t, RegisterSpec(ctx, st.Store, sp))

	bin := stack.BuildDriftline(t)
	worker := st.Driftline("worker", bin, "worker", "--metrics", fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t)), "--rbac", RBACWithoutFloors(t, st.Root),
		"--attestation-keys", "http://127.0.0.1:1/unused", "--concurrency", "2")
	serveURL := fmt.Sprintf("http://127.0.0.1:%d", stack.FreePort(t))
	st.Driftline("serve", bin, "serve", "--listen", strings.TrimPrefix(serveURL, "http://"), "--models", "wide", "--poll", "200ms", "--log-flush", "300ms")
	stack.WaitHTTP(t, serveURL+"/healthz", 30*time.Second)
	c := st.Dial(ctx, client.Options{})

	day := func(d int) string { return cfg.Start.AddDate(0, 0, d).Format(dataset.DateLayout) }
	first := runWide(ctx, t, c, sp, day(0), day(9))
	require.Equal(t, pipeline.OutcomePromoted, first.Outcome, first.Reason)
	requireWideExplanations(t, serveURL, cfg, first.Version)
	requireWideMonitorWindow(ctx, t, c, serveURL, cfg, sp)

	started := time.Now()
	second := runWide(ctx, t, c, sp, day(4), day(13))
	t.Logf("second run (1,000 features, 3,000 rows, 3 partitions): %s in %s: %s", second.Outcome, time.Since(started).Round(time.Second), second.Reason)
	require.Equal(t, pipeline.OutcomeRolledBack, second.Outcome, second.Reason)
	require.Contains(t, second.Reason, fmt.Sprintf("v%d rolled back, v%d stays in production", first.Version+1, first.Version))
	require.Contains(t, second.Reason, "not enough traffic")
	var rep activities.DriftReport
	requireStoredJSON(ctx, t, st.Store, latestReport(ctx, t, st.Store, "wide", "drift.json"), &rep)
	require.Equal(t, first.Version, rep.ReferenceVersion)
	require.Len(t, rep.Features, 1000)
	var drifted []string
	for _, f := range rep.Features {
		if f.Drifted {
			drifted = append(drifted, f.Name)
		}
	}
	require.Equal(t, cfg.FeatureNames()[:10], drifted, "the moved features and no other")
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", worker.Pid())); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				t.Logf("the worker's peak RSS over both runs: %s", strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")))
			}
		}
	}
}

// requireWideMonitorWindow sends serving 100 requests of a shifted day and runs the monitor
// until a window holds them: its input drift over the 1,000 features is found, every moved
// feature named, few others.
func requireWideMonitorWindow(ctx context.Context, t *testing.T, c client.Client, url string, cfg dataset.WideConfig, sp spec.Spec) {
	names := cfg.FeatureNames()
	for r := range 100 {
		x, _ := cfg.Row(cfg.ShiftDay+1, r)
		require.Equal(t, http.StatusOK, postWide(t, url, names, x, &serving.PredictResponse{}))
	}
	_, err := starter.StartMonitor(ctx, c, pipeline.MonitorInput{Spec: sp, RequestedBy: "wide-test"})
	require.NoError(t, err)
	defer func() { require.NoError(t, starter.StopMonitor(ctx, c, sp.Model)) }()
	var st pipeline.MonitorStatus
	require.Eventually(t, func() bool {
		st, err = starter.MonitorStatus(ctx, c, sp.Model)
		return err == nil && st.Last != nil && st.Last.Requests >= 100
	}, 2*time.Minute, 500*time.Millisecond, "a monitor window holds the 100 requests")
	t.Logf("monitor window over 1,000 features: %d requests, drift score %.3f: %s", st.Last.Requests, st.Last.DriftScore, st.Last.Why)
	require.True(t, st.Last.Drifted, st.Last.Why)
	open, end := strings.Index(st.Last.Why, "("), strings.Index(st.Last.Why, ")")
	require.True(t, open > 0 && end > open, st.Last.Why)
	flagged := strings.Split(st.Last.Why[open+1:end], ", ")
	for _, n := range names[:10] {
		require.Contains(t, flagged, n, "a moved feature is flagged in the live window")
	}
	// 121 requests make noisier effect sizes than the run's 3,000 rows: a false discovery or
	// two among 990 unmoved features is what Benjamini-Hochberg allows.
	require.LessOrEqual(t, len(flagged), 12, "few unmoved features flagged: %v", flagged)
}

// runWide starts a run over [from, to] and waits for its result.
func runWide(ctx context.Context, t *testing.T, c client.Client, sp spec.Spec, from, to string) pipeline.RunResult {
	run, err := starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: from, To: to, RequestedBy: "wide-test"})
	require.NoError(t, err)
	var res pipeline.RunResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// requireWideExplanations asks serving for a day's rows with explanations: each answer is
// the version's, explains every feature, and its contributions sum to the prediction; the
// features the target depends on weigh most.
func requireWideExplanations(t *testing.T, url string, cfg dataset.WideConfig, version int) {
	names := cfg.FeatureNames()
	var res serving.PredictResponse
	require.Eventually(t, func() bool {
		res = serving.PredictResponse{}
		x, _ := cfg.Row(3, 0)
		return postWide(t, url, names, x, &res) == http.StatusOK && res.Version == version
	}, time.Minute, 200*time.Millisecond, "serving loads v%d", version)
	weight := map[string]float64{}
	for r := range 20 {
		x, _ := cfg.Row(3, r)
		res = serving.PredictResponse{}
		require.Equal(t, http.StatusOK, postWide(t, url, names, x, &res))
		require.NotNil(t, res.Explanation)
		require.Len(t, res.Explanation.Contributions, 1000, "every feature explained")
		sum := res.Explanation.BaseValue
		for name, v := range res.Explanation.Contributions {
			sum += v
			weight[name] += math.Abs(v)
		}
		require.InDelta(t, res.Prediction, sum, 1e-6, "the contributions sum to the prediction")
	}
	top := slices.SortedFunc(func(yield func(string) bool) {
		for n := range weight {
			if !yield(n) {
				return
			}
		}
	}, func(a, b string) int { return -cmpFloat(weight[a], weight[b]) })[:3]
	for _, n := range top {
		require.Contains(t, names[:5], n, "the features the target depends on weigh most: %v", top)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// postWide posts one row with explain and decodes the answer; it returns the status.
func postWide(t *testing.T, url string, names []string, x []float64, out *serving.PredictResponse) int {
	features := map[string]any{}
	for i, n := range names {
		features[n] = x[i]
	}
	body, err := json.Marshal(map[string]any{"features": features, "explain": true})
	require.NoError(t, err)
	resp, err := http.Post(url+"/v1/models/wide:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// latestReport is the key of the newest stored report of that name among the model's runs.
func latestReport(ctx context.Context, t *testing.T, b objstore.Bucket, model, name string) string {
	var newest objstore.Object
	objs, err := b.List(ctx, "reports/"+model+"/")
	require.NoError(t, err)
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "/"+name) && o.LastModified.After(newest.LastModified) {
			newest = o
		}
	}
	require.NotEmpty(t, newest.Key, "a %s of %s", name, model)
	return newest.Key
}

// requireStoredJSON reads a stored JSON object into v.
func requireStoredJSON(ctx context.Context, t *testing.T, b objstore.Bucket, key string, v any) {
	raw, _, err := objstore.ReadAll(ctx, b, key)
	require.NoError(t, err, key)
	require.NoError(t, json.Unmarshal(raw, v), key)
}
