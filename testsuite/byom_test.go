package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
)

// A data scientist's scikit-learn script is the model's trainer. The loop trains v1 with the
// built-in gbdt on the weeks before the holiday season; the spec then names the command
// sklearn, which `driftline trainer` (a process of its own, as an operator runs it) maps to
// examples/sklearn/train.py under Debian's Python. A run over the holiday weeks, not forced,
// finds the drift and retrains through the script: its ONNX model is imported, evaluated
// against v1 on the same holdout, canaried on live traffic through `driftline serve` and
// promoted; serving then answers with it, explanations summing to its predictions.
func TestAScikitLearnTrainerRetrainsOnDriftAndIsPromoted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	st := stack.New(t, stack.DevServer, "driftline-byom")
	c := st.Dial(ctx, client.Options{})
	bin := stack.BuildDriftline(t)
	serveURL := loopProcesses(t, st, bin)
	st.Driftline("trainer", bin, "trainer", "--task-queue", "python", "--memory", "4GiB", "--timeout", "5m",
		"--work-dir", t.TempDir(), "--command", "sklearn=/usr/bin/python3 "+filepath.Join(st.Root, "examples/sklearn/train.py"))
	sp := firstRun(ctx, t, c, st.Store, st.Root)
	phase("stack, worker, trainer and serving up; v1 (built-in gbdt) promoted")

	py := sp
	py.Trainer = spec.Trainer{Name: "command", Command: "sklearn", TaskQueue: "python",
		Params: map[string]float64{"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1}}
	require.NoError(t, RegisterSpec(ctx, st.Store, py))
	res, runID, byVersion := runUnderTraffic(ctx, t, c, serveURL, pipeline.RunInput{Spec: py, From: "2026-10-03", To: "2026-10-30", RequestedBy: "byom-test"})
	phase(fmt.Sprintf("run 2: %s v%d: %s", res.Outcome, res.Version, res.Reason))
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	require.Equal(t, 2, res.Version)
	status, err := starter.Status(ctx, c, "demand", runID)
	require.NoError(t, err)
	require.True(t, status.Drift.Drifted, "the run retrained because the data drifted: %s", status.Drift.Why)
	require.True(t, status.Evaluation.HasChampion, "evaluated against v1 on the same holdout")
	require.LessOrEqual(t, status.Evaluation.CandidateMAE, status.Evaluation.ChampionMAE*(1+sp.Evaluation.MaxRegression)+1e-9)
	require.NotEmpty(t, status.Canary, "canaried on live traffic")
	require.Positive(t, byVersion[2], "the candidate answered live traffic during the canary")

	// v2 is the script's model, with its lineage; the command's log is kept with the run.
	reg := registry.New(st.Store)
	m, err := reg.LoadModel(ctx, "demand", 2)
	require.NoError(t, err)
	require.Equal(t, "external:python", m.Trainer)
	require.Equal(t, "onnx", m.Settings["source"])
	require.Equal(t, "TreeEnsembleRegressor", m.Settings["onnx_operator"])
	require.Len(t, m.GBDT.Trees, 200)
	log, _, err := objstore.ReadAll(ctx, st.Store, keys.Report("demand", runID, "external/trainer-attempt-1.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "fitted GradientBoostingRegressor")

	// Serving answers with v2 and explains it: the contributions add up to the prediction.
	req := traffic.FromRetail(dataset.DefaultRetail().RetailDay(40)[0])
	req.Explain = true
	var answer struct {
		Version     int     `json:"version"`
		Prediction  float64 `json:"prediction"`
		Explanation *struct {
			BaseValue     float64            `json:"base_value"`
			Contributions map[string]float64 `json:"contributions"`
		} `json:"explanation"`
	}
	require.Eventually(t, func() bool {
		body, _ := json.Marshal(req)
		resp, err := http.Post(serveURL+"/v1/models/demand:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&answer) == nil && answer.Version == 2
	}, 30*time.Second, 200*time.Millisecond, "serving answers with v2")
	require.NotNil(t, answer.Explanation)
	sum := answer.Explanation.BaseValue
	for _, v := range answer.Explanation.Contributions {
		sum += v
	}
	require.InDelta(t, answer.Prediction, sum, 1e-6*math.Max(1, math.Abs(sum)), "the explanation adds up")
	require.Len(t, answer.Explanation.Contributions, len(sp.Features))
	phase(fmt.Sprintf("serving v2: %.3f = %.3f + %s", answer.Prediction, answer.Explanation.BaseValue, strings.TrimSpace(fmt.Sprint(answer.Explanation.Contributions))))
}

// runTo starts a run and waits for its result.
func runTo(ctx context.Context, t *testing.T, c client.Client, in pipeline.RunInput) (pipeline.RunResult, string) {
	t.Helper()
	var run client.WorkflowRun
	var err error
	require.Eventually(t, func() bool { run, err = starter.StartRun(ctx, c, in); return err == nil }, 90*time.Second, 500*time.Millisecond, "start the run: %v", err)
	var res pipeline.RunResult
	require.NoError(t, run.Get(ctx, &res))
	return res, run.GetRunID()
}

// loopProcesses starts `driftline worker` and `driftline serve` on the stack (with what its
// environment says: its bucket, or another store) and returns serving's URL.
func loopProcesses(t *testing.T, st *stack.Stack, bin string) string {
	t.Helper()
	labelKey := filepath.Join(t.TempDir(), "label.key")
	require.NoError(t, os.WriteFile(labelKey, []byte(stack.RandomSecret(32)), 0o600))
	st.SetEnv("DRIFTLINE_LABEL_KEY_FILE=" + labelKey)
	st.Driftline("worker", bin, "worker", "--metrics", fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t)),
		"--rbac", RBACWithoutFloors(t, st.Root), "--attestation-keys", "http://127.0.0.1:1/unused")
	port := stack.FreePort(t)
	st.Driftline("serve", bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--models", "demand", "--poll", "200ms", "--log-flush", "300ms")
	serveURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	stack.WaitHTTP(t, serveURL+"/healthz", 30*time.Second)
	return serveURL
}

// firstRun writes the retail dataset to store, registers the demo spec (no approval, a fast
// one-step canary) and runs the loop on the weeks before the holiday season: v1 promoted.
func firstRun(ctx context.Context, t *testing.T, c client.Client, store objstore.Bucket, root string) spec.Spec {
	t.Helper()
	_, _, err := dataset.WriteRetail(ctx, store, "retail_demand", dataset.DefaultRetail())
	require.NoError(t, err)
	sp := demoSpec(t, root)
	require.NoError(t, RegisterSpec(ctx, store, sp))
	res, _ := runTo(ctx, t, c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28", RequestedBy: "testsuite"})
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	require.Equal(t, 1, res.Version)
	return sp
}

// demoSpec is the demo's spec for these tests: no approval, a fast one-step canary.
func demoSpec(t *testing.T, root string) spec.Spec {
	t.Helper()
	sp, err := spec.Load(filepath.Join(root, "examples/demand.yaml"))
	require.NoError(t, err)
	sp.Approval.Required = false // these tests are about the trainer and the store, not people
	sp.Canary.Steps, sp.Canary.Bake.Duration, sp.Canary.MaxBakes = []float64{0.5}, 3*time.Second, 6
	sp.Canary.MinRequest, sp.Canary.MinLabels = 15, 300
	return sp
}

// runUnderTraffic runs the loop while clients send the demo's requests to serving (150 a
// second, labels following): the run's result and ID, and the answers by version.
func runUnderTraffic(ctx context.Context, t *testing.T, c client.Client, serveURL string, in pipeline.RunInput) (pipeline.RunResult, string, map[int]int) {
	t.Helper()
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var sent traffic.Stats
	stack.WaitHTTP(t, serveURL+"/readyz", 30*time.Second)
	go traffic.Run(tctx, serveURL, "demand", dataset.DefaultRetail().Requests(7), 150, &sent)
	res, runID := runTo(ctx, t, c, in)
	stopTraffic()
	_, _, _, byVersion := sent.Snapshot()
	return res, runID, byVersion
}
