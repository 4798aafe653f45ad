package activities

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/internal/duckdbtest"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

type env struct {
	t       *testing.T
	store   *objstore.Counting
	te      *testsuite.TestActivityEnvironment
	metrics *Metrics
	spec    spec.Spec
}

// The API's attestation key as these tests hold it: it signs the runs' origins.
var originKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))

func originKeys(context.Context) ([]pipeline.AttestationKey, error) {
	return []pipeline.AttestationKey{{KID: "test", PublicKey: base64.RawURLEncoding.EncodeToString(originKey.Public().(ed25519.PublicKey))}}, nil
}

// origin is the API's attestation that sub started a run (or monitor) of the model now.
func origin(kind, model, sub string) string {
	now := time.Now()
	return pipeline.SignAttestation(originKey, "test", pipeline.Attested{Kind: kind, Model: model, Subject: sub, IssuedAt: now.Unix(),
		Expires: now.Add(time.Hour).Unix(), ID: fmt.Sprintf("origin-%d", now.UnixNano()), Issuer: "test"})
}

func newEnv(t *testing.T) *env {
	store := objstore.WrapWithCounting(stack.NewMinIOBucket(t), nil)
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	m := NewMetrics(prometheus.NewRegistry())
	reg := registry.New(store)
	rbac, err := policies.LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	engine, err := policies.NewEngine(context.Background(), rbac)
	require.NoError(t, err)
	te.RegisterActivity(&Data{Store: store, Registry: reg, Metrics: m})
	te.RegisterActivity(&Training{Store: store, Registry: reg, Metrics: m})
	te.RegisterActivity(&Registry{Store: store, Registry: reg, Metrics: m})
	te.RegisterActivity(&Policy{Store: store, Engine: engine, Audit: audit.Log{Store: store}, Registry: reg, Keys: originKeys})
	te.RegisterActivity(&Canary{Store: store, Registry: reg, LabelKey: testLabelKey})
	raw, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	sp, err := spec.Parse(raw)
	require.NoError(t, err)
	_, _, err = reg.ApplySpec(context.Background(), sp, raw, "", "grace", "the demand forecast's spec", nil)
	require.NoError(t, err)
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items = 6, 20
	_, _, err = dataset.WriteRetail(context.Background(), store, sp.Dataset.Name, cfg)
	require.NoError(t, err)
	return &env{t: t, store: store, te: te, metrics: m, spec: sp}
}

func call[T any](e *env, fn any, in any) (T, error) {
	var out T
	v, err := e.te.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	return out, v.Get(&out)
}

func must[T any](e *env, fn any, in any) T {
	e.t.Helper()
	out, err := call[T](e, fn, in)
	require.NoError(e.t, err)
	return out
}

var (
	d  *Data
	tr *Training
	rg *Registry
	pl *Policy
	cn *Canary
)

// trainAndDeploy runs snapshot..policy for a window and returns the pieces.
func (e *env) cycle(run, from, to string) (pipeline.StepInput, pipeline.DriftResult, pipeline.EvaluateResult, pipeline.RegisterResult, pipeline.PolicyResult) {
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: run, Dataset: e.spec.Dataset.Name, From: from, To: to})
	again := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: run, Dataset: e.spec.Dataset.Name, From: from, To: to})
	require.Equal(e.t, snap, again, "a retried snapshot returns the pinned manifest")
	e.store.Reset() // count what the data steps read (the snapshot reads only footers)
	step := pipeline.StepInput{Model: "demand", RunID: run, Spec: e.spec, SnapshotKey: snap.Key}
	ins := must[pipeline.InspectResult](e, d.Inspect, step)
	val, drr := ins.Validation, ins.Drift
	require.Equal(e.t, val.RowsRead, val.RowsAccepted+val.RowsQuarantined)
	trr := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: step, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
	ev := must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: step, ArtifactKey: trr.ArtifactKey, ChampionVersion: drr.ReferenceVersion})
	reports := map[string]string{"validation": val.ReportURI, "evaluation": ev.ReportURI, "drift": drr.ReportURI}
	rin := pipeline.RegisterInput{StepInput: step, WorkflowID: "ct/demand", RequestedBy: "test", ArtifactKey: trr.ArtifactKey, ProfileKey: trr.ProfileKey,
		Metrics: map[string]float64{"holdout_mae": ev.CandidateMAE}, Reports: reports, LossEstimatorKey: ev.LossEstimatorKey, Importance: ev.Importance}
	rr := must[pipeline.RegisterResult](e, rg.Register, rin)
	require.Equal(e.t, rr, must[pipeline.RegisterResult](e, rg.Register, rin), "a retried registration returns the same version")
	e.registerSpec()
	pr := must[pipeline.PolicyResult](e, pl.Check, pipeline.PolicyInput{Model: "demand", RunID: run, Version: rr.Version, CandidateMAE: ev.CandidateMAE,
		ChampionVersion: drr.ReferenceVersion, ChampionMAE: ev.ChampionMAE, Spec: e.spec, Reports: reports,
		Origin: origin(pipeline.KindRun, "demand", "dave"), StartedAt: time.Now()})
	return step, drr, ev, rr, pr
}

// registerSpec applies the test's spec as the model's next version when a test changed one of
// its governed fields (as a governance officer would through the API).
func (e *env) registerSpec() {
	e.t.Helper()
	ctx := context.Background()
	reg := registry.New(e.store)
	cur, _, etag, err := reg.CurrentSpec(ctx, "demand")
	require.NoError(e.t, err)
	if len(spec.GovernanceChanges(&cur, e.spec)) == 0 {
		return
	}
	raw, err := yaml.Marshal(e.spec)
	require.NoError(e.t, err)
	sp, err := spec.Parse(raw)
	require.NoError(e.t, err)
	require.Empty(e.t, spec.GovernanceChanges(&sp, e.spec), "the spec survives YAML")
	_, _, err = reg.ApplySpec(ctx, sp, raw, etag, "grace", "the test's governance", nil)
	require.NoError(e.t, err)
}

func TestLoopActivitiesOnMinIO(t *testing.T) {
	e := newEnv(t)
	_, drr, ev, rr, pr := e.cycle("run-1", "2026-09-01", "2026-09-28")
	require.Zero(t, drr.ReferenceVersion, "no production model yet")
	require.False(t, ev.HasChampion)
	require.NotNil(t, ev.Fairness)
	require.Equal(t, "region", ev.Fairness.Attribute)
	require.Len(t, ev.Fairness.Groups, 4)
	require.Greater(t, ev.Fairness.DisparateImpact, 0.8, "region plays no part in the demo's demand: %+v", ev.Fairness)
	require.Less(t, ev.CandidateMAE, e.spec.Evaluation.MaxMAE)
	require.Equal(t, 1, rr.Version)
	require.True(t, pr.Allow, pr.Reasons)
	require.True(t, pr.ApprovalRequired)
	// Lineage: the pinned files, and the policy decision kept with the version.
	v1, err := registry.New(e.store).Version(context.Background(), "demand", 1)
	require.NoError(t, err)
	require.Len(t, v1.Lineage.SnapshotFiles, 28)
	require.NotEmpty(t, v1.Lineage.SnapshotFiles[0].ETag)
	require.Positive(t, v1.Lineage.SnapshotFiles[0].Rows)
	require.Equal(t, e.spec.Hash, v1.Lineage.SpecHash)
	decisions, err := e.store.List(context.Background(), "models/demand/versions/1/decisions/")
	require.NoError(t, err)
	require.Len(t, decisions, 1)

	// The validation report has per-column numbers, including distinct counts.
	raw, _, err := objstore.ReadAll(context.Background(), e.store, "reports/demand/run-1/validation.json")
	require.NoError(t, err)
	var vr dataset.ValidationReport
	require.NoError(t, json.Unmarshal(raw, &vr))
	require.True(t, vr.Passed)
	require.Equal(t, vr.RowsRead, vr.RowsAccepted+vr.RowsQuarantined)
	require.Equal(t, vr.RowsQuarantined, vr.Columns["temperature"].NaN, "the demo's only defect is NaN temperature")
	require.EqualValues(t, 4, vr.Columns["region"].Distinct)
	require.InDelta(t, 6, vr.Columns["store_id"].Distinct, 0.5)
	require.InDelta(t, 28, vr.Columns["date"].Distinct, 1)
	require.Len(t, vr.Files, 28)

	_, err = call[pipeline.DeployResult](e, rg.SetCanary, pipeline.DeployInput{Model: "demand", RunID: "run-1", Version: 1, Share: 0.2})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, pipeline.ErrTypeConflict, appErr.Type(), "no canary without production")
	dep := must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "run-1", Version: 1})
	require.Equal(t, 1, dep.Production)
	require.Equal(t, dep, must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "run-1", Version: 1}), "promote is idempotent")

	// The holiday window drifts against v1, and the new model beats it on the same holdout.
	// The run's data steps read each window byte at most twice: once in the one pass
	// (validate + drift + training preparation), once more in train (its days) or evaluate
	// (the holdout days), never in both.
	_, drr, ev, rr, pr = e.cycle("run-2", "2026-10-03", "2026-10-30")
	snap2 := loadSnap(t, e, "snapshots/retail_demand/run-2.json")
	read := e.store.BytesRead()
	var windowBytes, windowRead int64
	for _, f := range snap2.Files {
		windowBytes += f.Size
		windowRead += read[f.Key]
		require.LessOrEqual(t, read[f.Key], 2*f.Size, "%s: %d bytes read of %d", f.Key, read[f.Key], f.Size)
		require.Greater(t, read[f.Key], f.Size/2, "%s is read by the one pass and by its own step", f.Key)
	}
	t.Logf("run-2 read %d bytes of a %d-byte window (%.2fx)", windowRead, windowBytes, float64(windowRead)/float64(windowBytes))
	require.Equal(t, 1, drr.ReferenceVersion)
	require.True(t, drr.Drifted, drr.Why)
	require.Contains(t, drr.DriftedFeatures, "price")
	require.True(t, ev.HasChampion)
	require.Less(t, ev.CandidateMAE, ev.ChampionMAE)
	require.Equal(t, 2, rr.Version)
	require.True(t, pr.Allow, pr.Reasons)
	raw, _, err = objstore.ReadAll(context.Background(), e.store, "reports/demand/run-2/drift.json")
	require.NoError(t, err)
	var rep DriftReport
	require.NoError(t, json.Unmarshal(raw, &rep))
	require.Equal(t, 1, rep.ReferenceVersion)
	kinds := map[string]string{}
	for _, f := range rep.Features {
		kinds[f.Name] = f.Kind + "/" + f.Test
		require.NotEmpty(t, f.Why)
	}
	require.Equal(t, map[string]string{"price": "numeric/ks-exact", "promo": "categorical/chi-squared", "weekday": "categorical/chi-squared",
		"temperature": "numeric/ks-exact", "item_popularity": "numeric/ks-exact"}, kinds)
	require.Greater(t, testutil.ToFloat64(e.metrics.DriftScore.WithLabelValues("demand")), e.spec.Drift.PSIThreshold)
	require.InDelta(t, ev.ChampionMAE, testutil.ToFloat64(e.metrics.MAE.WithLabelValues("demand", "champion")), 1e-12)

	dep = must[pipeline.DeployResult](e, rg.SetCanary, pipeline.DeployInput{Model: "demand", RunID: "run-2", Version: 2, Share: 0.3})
	require.Equal(t, 2, dep.Canary)
	require.False(t, dep.CanarySince.IsZero())
	dep = must[pipeline.DeployResult](e, rg.AbortCanary, pipeline.DeployInput{Model: "demand", RunID: "run-2", Version: 2})
	require.Equal(t, 1, dep.Production)
	require.Zero(t, dep.Canary)

	// Every mutation is in the audit trail.
	recs, err := audit.Log{Store: e.store}.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	for _, a := range []string{"register", "policy_decision", "promote", "set_canary", "abort_canary"} {
		require.Contains(t, actions, a)
	}
}

func TestEmptyWindowIsNonRetryable(t *testing.T) {
	e := newEnv(t)
	_, err := call[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "r", Dataset: e.spec.Dataset.Name, From: "2031-01-01", To: "2031-01-28"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, pipeline.ErrTypeInvalidData, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, err.Error(), "no rows between 2031-01-01 and 2031-01-28")
}

// putBadFile writes a day file whose price column holds text (the contract says double) next
// to 2026-09-05's good one, and returns its key and bytes.
func (e *env) putBadFile() (string, []byte) {
	e.t.Helper()
	type textPrice struct {
		Date            string  `parquet:"date"`
		StoreID         int32   `parquet:"store_id"`
		ItemID          int32   `parquet:"item_id"`
		Region          string  `parquet:"region"`
		Price           string  `parquet:"price"`
		Promo           int32   `parquet:"promo"`
		Weekday         int32   `parquet:"weekday"`
		Temperature     float64 `parquet:"temperature"`
		ItemPopularity  float64 `parquet:"item_popularity"`
		CompetitorPrice float64 `parquet:"competitor_price"`
		UnitsSold       float64 `parquet:"units_sold"`
	}
	bad, err := dataset.EncodeParquet([]textPrice{{Date: "2026-09-05", StoreID: 1, ItemID: 1, Region: "north", Price: "cheap", UnitsSold: 3}})
	require.NoError(e.t, err)
	key := "datasets/retail_demand/dt=2026-09-05/part-0001.parquet"
	_, err = e.store.Put(context.Background(), key, bad, objstore.PutOptions{})
	require.NoError(e.t, err)
	return key, bad
}

func TestBadFileFailsValidationAndIsQuarantined(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	badKey, bad := e.putBadFile()
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "r", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	_, err := call[pipeline.InspectResult](e, d.Inspect, pipeline.StepInput{Model: "demand", RunID: "r", Spec: e.spec, SnapshotKey: snap.Key})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, pipeline.ErrTypeInvalidData, appErr.Type())
	require.Contains(t, err.Error(), badKey)
	require.Contains(t, err.Error(), "column price")
	// The file is kept aside with its reason; the report says why the run failed.
	q := "quarantine/retail_demand/r/files/" + strings.ReplaceAll(badKey, "/", "__")
	kept, _, err := objstore.ReadAll(ctx, e.store, q)
	require.NoError(t, err)
	require.Equal(t, bad, kept)
	reason, _, err := objstore.ReadAll(ctx, e.store, q+".reason.json")
	require.NoError(t, err)
	require.Contains(t, string(reason), "does not hold the contract's type double")
	report, _, err := objstore.ReadAll(ctx, e.store, "reports/demand/r/validation.json")
	require.NoError(t, err)
	require.Contains(t, string(report), `"passed": false`)
}

func TestTooManyBadRowsFailsWithExamples(t *testing.T) {
	e := newEnv(t)
	e.spec.Contract.MaxBadRowShare = 0.0001 // the demo data has ~0.2% NaN temperatures
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "r", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	_, err := call[pipeline.InspectResult](e, d.Inspect, pipeline.StepInput{Model: "demand", RunID: "r", Spec: e.spec, SnapshotKey: snap.Key})
	require.Error(t, err)
	require.Contains(t, err.Error(), "over the limit")
	require.Contains(t, err.Error(), "column temperature: NaN value")
	parts, err := e.store.List(context.Background(), "quarantine/retail_demand/r/rows/")
	require.NoError(t, err)
	require.NotEmpty(t, parts)
	rows, _, err := objstore.ReadAll(context.Background(), e.store, parts[0].Key)
	require.NoError(t, err)
	require.Contains(t, string(rows), `"reason":"NaN value"`)
	require.Contains(t, string(rows), `"region":`, "the quarantined row keeps all its values")
	// DuckDB reads the quarantine as newline-delimited JSON (docs/data.md, "Reading
	// Driftline's outputs").
	dir := duckdbtest.Fetch(t, e.store, "quarantine/retail_demand/r/rows/", t.TempDir())
	q := duckdbtest.Query(t, fmt.Sprintf(`SELECT * FROM read_json_auto('%s/*.jsonl') ORDER BY file, row`, dir))
	require.NotEmpty(t, q.Rows)
	types := q.Types()
	for col, want := range map[string]string{"file": "VARCHAR", "row": "BIGINT", "column": "VARCHAR", "reason": "VARCHAR"} {
		require.Equal(t, want, types[col], "column %s: %v", col, types)
	}
	require.Equal(t, "NaN value", q.Get(0, "reason"))
	require.Equal(t, "temperature", q.Get(0, "column"))
	require.Contains(t, types["values"], "STRUCT(", "the row's values as a struct of its columns")
}

func TestCanaryJudgement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	write := func(n int, route string, version int, errEvery int, latencyUs int64) {
		var recs []predlog.Record
		for i := range n {
			r := predlog.Record{RequestID: fmt.Sprint(route, i), TimeUnixMs: since.Add(time.Duration(i) * time.Millisecond).UnixMilli(),
				Model: "demand", Version: int32(version), Route: route, LatencyUs: latencyUs}
			if errEvery > 0 && i%errEvery == 0 {
				r.Error = "missing feature"
			}
			recs = append(recs, r)
		}
		data, err := dataset.EncodeParquet(recs)
		require.NoError(t, err)
		_, err = e.store.Put(ctx, fmt.Sprintf("%spart-%d.parquet", predlog.Prefix("demand", since), time.Now().UnixNano()), data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	g := e.spec.Canary
	judge := func() pipeline.CanaryEvalResult {
		return must[pipeline.CanaryEvalResult](e, cn.EvaluateCanary, pipeline.CanaryEvalInput{Model: "demand", RunID: "r", Candidate: 2, Production: 1, Since: since, Bake: 1, Guardrails: g})
	}
	write(10, "production", 1, 0, 200)
	write(10, "canary", 2, 0, 200)
	require.Equal(t, pipeline.CanaryWait, judge().Decision, "too little traffic")
	write(100, "production", 1, 0, 200)
	write(100, "canary", 2, 0, 250)
	g.ProtectedAttribute = ""
	res := judge()
	require.Equal(t, pipeline.CanaryInconclusive, res.Decision, "110 requests are too few for a p99: %s", res.Reason)
	require.Contains(t, res.Reason, "a p99 needs 299 per route")
	g.ProtectedAttribute = e.spec.Canary.ProtectedAttribute
	write(200, "production", 1, 0, 200)
	write(200, "canary", 2, 0, 250)
	// The spec checks disparate impact by region, and neither version is registered here: the
	// guardrail cannot be evaluated, so the step is inconclusive, never a silent pass.
	res = judge()
	require.Equal(t, pipeline.CanaryInconclusive, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "candidate v2 did not load")
	g.ProtectedAttribute = ""
	res = judge()
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.Equal(t, 310, res.Candidate.Requests)
	write(60, "canary", 2, 0, 90_000) // p99 90 ms against 0.2 ms (ids repeat: the log keeps both)
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "p99 latency")
	write(100, "canary", 2, 2, 200) // half of these fail
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "error rate")
	require.NotEmpty(t, res.EvidenceURI)
}

func TestNotifyApprovalPostsSlackCompatiblePayload(t *testing.T) {
	got := make(chan map[string]any, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		body["idempotency"] = r.Header.Get("Idempotency-Key")
		got <- body
	}))
	defer hook.Close()
	p := &Policy{Webhook: hook.URL}
	require.NoError(t, p.NotifyApproval(context.Background(), pipeline.ApprovalRequest{Model: "demand", RunID: "r1", Version: 2,
		Approvers: []string{"user:alice"}, Timeout: time.Hour}))
	body := <-got
	require.Contains(t, body["text"], "demand v2 waits for approval")
	require.Contains(t, body["text"], "user:alice")
	require.Equal(t, "r1/2", body["idempotency"])
	require.NoError(t, (&Policy{}).NotifyApproval(context.Background(), pipeline.ApprovalRequest{}), "no webhook: nothing to do")
	bad := &Policy{Webhook: hook.URL + "/x"}
	hook.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	require.ErrorContains(t, bad.NotifyApproval(context.Background(), pipeline.ApprovalRequest{}), "HTTP 500")
	// A webhook's URL is its secret: no failure message (which reaches Temporal history and the
	// logs) carries its path or query.
	secret := "/services/T000/B000/XXXXsecretXXXX?token=s3cr3t"
	for _, p := range []*Policy{{Webhook: hook.URL + secret}, {Webhook: "http://127.0.0.1:1" + secret}, {Webhook: "http://[::1" + secret}} {
		err := p.NotifyApproval(context.Background(), pipeline.ApprovalRequest{})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "secret", "%v", err)
		require.NotContains(t, err.Error(), "s3cr3t", "%v", err)
	}
}

// The closed loop: live MAE from labels (decided only with enough labels and a significant,
// large enough difference), fallback rate, and disparate impact of the candidate's answers.
func TestCanaryClosedLoopGuardrails(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// A candidate and a production model (trained on the demo data) for the fairness threshold.
	_, _, _, rr, _ := e.cycle("run-1", "2026-09-01", "2026-09-28")
	require.Equal(t, 1, rr.Version)
	_, _, _, rr, _ = e.cycle("run-2", "2026-10-03", "2026-10-30")
	require.Equal(t, 2, rr.Version)
	since := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	put := func(recs []predlog.Record, labels []predlog.Label) {
		if len(recs) > 0 {
			data, err := dataset.EncodeParquet(recs)
			require.NoError(t, err)
			_, err = e.store.Put(ctx, fmt.Sprintf("%spart-%d.parquet", predlog.Prefix("demand", since), time.Now().UnixNano()), data, objstore.PutOptions{})
			require.NoError(t, err)
		}
		if len(labels) > 0 {
			data, err := dataset.EncodeParquet(labels)
			require.NoError(t, err)
			_, err = e.store.Put(ctx, fmt.Sprintf("%spart-%d.parquet", predlog.FeedbackPrefix("demand", since), time.Now().UnixNano()), data, objstore.PutOptions{})
			require.NoError(t, err)
		}
	}
	// traffic writes n answers per route; candidate errors are cErr off the label, production's pErr.
	seq := 0
	traffic := func(n int, cErr, pErr float64, withLabels bool, candRegion func(i int) (string, float64), fallbackEvery int) {
		var recs []predlog.Record
		var labels []predlog.Label
		for i := range n {
			seq++
			for _, rt := range []struct {
				route   string
				version int32
				err     float64
			}{{"canary", 1, cErr}, {"production", 2, pErr}} {
				id := fmt.Sprintf("%s-%d", rt.route, seq)
				pred := 20 + rt.err*float64(1+i%3)/2 // mean error rt.err
				rec := predlog.Record{RequestID: id, TimeUnixMs: since.Add(time.Duration(seq) * time.Millisecond).UnixMilli(),
					Model: "demand", Version: rt.version, Route: rt.route, LatencyUs: 200, Prediction: pred}
				if rt.route == "canary" {
					// Every request carries the protected attribute, so disparate impact is evaluated.
					region := []string{"north", "south"}[i%2]
					if candRegion != nil {
						region, rec.Prediction = candRegion(i)
					}
					rec.Attributes = `{"region":"` + region + `"}`
					rec.Inputs = `{"price":5,"promo":0,"weekday":3,"temperature":15,"item_popularity":1.5}`
				}
				if rt.route == "canary" && fallbackEvery > 0 && i%fallbackEvery == 0 {
					rec.Fallback = "temperature: weather source down, last known value"
				}
				recs = append(recs, rec)
				// Serving also scores the other model on this request, off its path.
				other := map[string]struct {
					v int32
					e float64
				}{"canary": {2, pErr}, "production": {1, cErr}}[rt.route]
				recs = append(recs, predlog.Record{RequestID: id, TimeUnixMs: rec.TimeUnixMs, Model: "demand", Version: other.v,
					Route: string(pipeline.RoutePaired), LatencyUs: 150, Prediction: 20 + other.e*float64(1+i%3)/2})
				if withLabels {
					labels = append(labels, predlog.Label{RequestID: id, TimeUnixMs: rec.TimeUnixMs, Model: "demand", Label: 20,
						Token: predlog.LabelToken(testLabelKey, "demand", int(rt.version), id, time.UnixMilli(rec.TimeUnixMs))})
				}
			}
		}
		put(recs, labels)
	}
	g := e.spec.Canary
	g.MinLabels = 100
	judge := func() pipeline.CanaryEvalResult {
		return must[pipeline.CanaryEvalResult](e, cn.EvaluateCanary, pipeline.CanaryEvalInput{Model: "demand", RunID: "r", Candidate: 1, Production: 2,
			Since: since, Step: 1, Bake: 1, Share: 0.3, Guardrails: g})
	}

	traffic(300, 1.0, 1.0, false, nil, 0)
	res := judge()
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.False(t, res.MAE.Decided, "no labels yet: MAE does not decide")
	require.Contains(t, res.Reason, "MAE undecided")

	traffic(300, 3.0, 1.0, true, nil, 0) // labels arrive: the candidate is three times worse
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.True(t, res.MAE.Decided)
	require.Equal(t, 600, res.MAE.Pairs, "both routes' labelled requests, each with both answers")
	require.Contains(t, res.Reason, "live MAE")
	require.Less(t, res.MAE.PValue, 0.05)

	g.MaxMAERegression = 5 // a regression under the allowed margin does not roll back
	require.Equal(t, pipeline.CanaryPromote, judge().Decision)
	g.MaxMAERegression = 0.05

	// Labels whose token does not verify (forged, or from before tokens) are ignored.
	seq = 0
	var forged []predlog.Label
	for i := 1; i <= 60; i++ {
		for _, route := range []string{"canary", "production"} {
			forged = append(forged, predlog.Label{RequestID: fmt.Sprintf("%s-%d", route, i), TimeUnixMs: since.UnixMilli(), Model: "demand", Label: -1000,
				Token: predlog.LabelToken([]byte("a-forger-does-not-have-the-key-at-all"), "demand", 1, fmt.Sprintf("%s-%d", route, i), since)})
		}
	}
	put(nil, forged)
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, "the real labels still decide: %s", res.Reason)
	require.Equal(t, 120, res.MAE.IgnoredLabels, "every forged label is ignored and counted")

	// The same answers' labels sent again with valid tokens (to another replica, or after a
	// restart) and absurd values: the first label of each answer counts, the others are
	// ignored and counted.
	first, err := predlog.ReadLabels(ctx, e.store, "demand", since, time.Now().Add(time.Hour))
	require.NoError(t, err)
	var again []predlog.Label
	for _, l := range first {
		if l.Label != -1000 { // the real ones
			l.Label, l.TimeUnixMs = 1e4, l.TimeUnixMs+60_000
			again = append(again, l)
		}
	}
	require.NotEmpty(t, again)
	put(nil, again)
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, "the first labels still decide: %s", res.Reason)
	require.Equal(t, 120+len(again), res.MAE.IgnoredLabels, "each label sent again is ignored and counted")

	g.MinLabels = 1000 // too few labels: undecided again
	require.Equal(t, pipeline.CanaryPromote, judge().Decision)
	g.MinLabels = 100

	// Fallbacks on the candidate route over the allowed delta.
	seq = 0
	since = since.Add(10 * time.Second)
	traffic(60, 1, 1, false, nil, 5)
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "fallback rate")

	// Disparate impact: the candidate favours one region.
	since = since.Add(10 * time.Second)
	regions := []string{"east", "west"}
	traffic(300, 1, 1, false, func(i int) (string, float64) {
		if i%2 == 0 {
			return regions[0], 0 // never at or above the training mean
		}
		return regions[1], 1e6
	}, 0)
	res = judge()
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "disparate impact of region 0.000 (east vs west)")
	require.Contains(t, res.Reason, "below production's 1.000 on the same 300 requests")
	require.Less(t, res.DisparateImpactDelta.High, 0.0, "the whole interval is below production's")
	require.Equal(t, 1.0, res.ProductionFairness.DisparateImpact, "production answers every region alike on these requests")
}

// The gbdt trainer end to end on MinIO: metrics overall and per segment for candidate and
// champion, importance and the int8 variant kept with the version, and policy deciding which
// variant serving loads.
func TestGBDTEvaluationQuantizationAndServingVariant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.Equal(t, "gbdt", e.spec.Trainer.Name)
	e.spec.Quantization.Serve, e.spec.Quantization.MaxMAELoss = true, 0.05
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "g1", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	step := pipeline.StepInput{Model: "demand", RunID: "g1", Spec: e.spec, SnapshotKey: snap.Key}
	ins := must[pipeline.InspectResult](e, d.Inspect, step)
	val := ins.Validation
	trr := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: step, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
	require.Equal(t, "rmse", trr.TrainMetric)
	require.Positive(t, trr.Trees)
	require.LessOrEqual(t, trr.Trees, 100)
	ev := must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: step, ArtifactKey: trr.ArtifactKey})
	for _, k := range []string{"mae", "rmse", "r2", "mape"} {
		require.Contains(t, ev.Metrics, k)
	}
	require.Greater(t, ev.Metrics["r2"], 0.5)
	require.Len(t, ev.Importance, len(e.spec.Features))
	require.Greater(t, ev.Importance["price"], 0.0)
	require.NotNil(t, ev.Quantization)
	require.Empty(t, ev.Quantization.Error)
	require.Less(t, ev.Quantization.MAELoss, 0.05)
	require.NotEmpty(t, ev.Int8Key)
	raw, _, err := objstore.ReadAll(ctx, e.store, "reports/demand/g1/evaluation.json")
	require.NoError(t, err)
	var rep evaluate.Report
	require.NoError(t, json.Unmarshal(raw, &rep))
	require.Equal(t, "region", rep.SegmentBy)
	require.Len(t, rep.Candidate.Segments, 4)
	require.Equal(t, ev.HoldoutRows, rep.Candidate.Overall.Rows)

	reports := map[string]string{"validation": val.ReportURI, "evaluation": ev.ReportURI}
	rr := must[pipeline.RegisterResult](e, rg.Register, pipeline.RegisterInput{StepInput: step, WorkflowID: "ct/demand", RequestedBy: "test",
		ArtifactKey: trr.ArtifactKey, ProfileKey: trr.ProfileKey, Metrics: ev.Metrics, Reports: reports,
		Int8Key: ev.Int8Key, Quantization: ev.Quantization, Importance: ev.Importance})
	reg := registry.New(e.store)
	v, err := reg.Version(ctx, "demand", rr.Version)
	require.NoError(t, err)
	require.Equal(t, registry.VariantKey("demand", rr.Version, "int8"), v.Quantization.Key)
	require.Positive(t, v.Quantization.SizeBytes)
	require.Equal(t, ev.Importance, v.Importance)
	// Before a policy allow, serving loads the float model.
	_, variant, err := reg.LoadServingModel(ctx, "demand", rr.Version)
	require.NoError(t, err)
	require.Equal(t, "float64", variant)
	e.registerSpec()
	pr := must[pipeline.PolicyResult](e, pl.Check, pipeline.PolicyInput{Model: "demand", RunID: "g1", Version: rr.Version, CandidateMAE: ev.CandidateMAE,
		Spec: e.spec, Reports: reports, Quantization: ev.Quantization, Origin: origin(pipeline.KindRun, "demand", "dave"), StartedAt: time.Now()})
	require.True(t, pr.Allow, pr.Reasons)
	require.True(t, pr.ServeQuantized)
	m, variant, err := reg.LoadServingModel(ctx, "demand", rr.Version)
	require.NoError(t, err)
	require.Equal(t, "int8", variant)
	require.Equal(t, "int8", m.Family)
}

// An external trainer's artifact is verified before it is used: it must be in this bucket
// and use the spec's features.
func TestAdoptExternalChecksTheArtifact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "x1", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	step := pipeline.StepInput{Model: "demand", RunID: "x1", Spec: e.spec, SnapshotKey: snap.Key}
	ein := must[pipeline.ExternalTrainInput](e, tr.ExternalInput, step)
	require.Len(t, ein.Files, 28)
	require.Equal(t, "2026-09-22", ein.HoldoutFrom)
	require.Equal(t, e.spec.Features, ein.Features)
	// The rows before the holdout, as CSV: a header, then each accepted row once, about a
	// tenth of them for validation.
	var csvRows int
	for _, f := range []struct {
		uri  string
		rows int
	}{{ein.TrainURI, ein.TrainRows}, {ein.ValidationURI, ein.ValidationRows}} {
		raw, _, err := objstore.ReadAll(ctx, e.store, strings.TrimPrefix(f.uri, e.store.URI("")))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		require.Equal(t, strings.Join(append(slices.Clone(e.spec.Features), e.spec.Target), ","), lines[0])
		require.Len(t, lines, f.rows+1)
		require.Len(t, strings.Split(lines[1], ","), len(e.spec.Features)+1)
		csvRows += f.rows
	}
	require.InDelta(t, 0.1, float64(ein.ValidationRows)/float64(csvRows), 0.02)
	require.Equal(t, 0.1, ein.ValidationShare)
	// A trainer that writes a Driftline artifact (here: the built-in one's output, copied).
	// Without the one pass's keys (a run from before it), Train prepares the bins itself.
	built := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: step})
	art, _, err := objstore.ReadAll(ctx, e.store, built.ArtifactKey)
	require.NoError(t, err)
	outKey := strings.TrimPrefix(ein.OutputURI, e.store.URI(""))
	_, err = e.store.Put(ctx, outKey, art, objstore.PutOptions{})
	require.NoError(t, err)
	got := must[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, TaskQueue: "py", Output: pipeline.ExternalTrainOutput{ArtifactURI: ein.OutputURI, Format: pipeline.FormatDriftline, TrainRows: 10}})
	staged, _, err := objstore.ReadAll(ctx, e.store, got.ArtifactKey)
	require.NoError(t, err)
	require.Contains(t, string(staged), "external:py")
	ev := must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: step, ArtifactKey: got.ArtifactKey})
	require.Positive(t, ev.CandidateMAE)

	xgb, err := os.ReadFile("../model/testdata/xgboost/regression.json")
	require.NoError(t, err)
	_, err = e.store.Put(ctx, outKey, xgb, objstore.PutOptions{})
	require.NoError(t, err)
	_, err = call[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, TaskQueue: "py", Output: pipeline.ExternalTrainOutput{ArtifactURI: ein.OutputURI, Format: pipeline.FormatXGBoostJSON}})
	require.ErrorContains(t, err, "4 features, 5 names")

	// A LightGBM text model of the spec's features is converted, staged and evaluated.
	lgb := fmt.Sprintf("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=%d\nobjective=regression\nfeature_names=%s\n\n"+
		"Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=5\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=10 4\nleaf_weight=1 1\n\nend of trees\n",
		len(e.spec.Features)-1, strings.Join(e.spec.Features, " "))
	_, err = e.store.Put(ctx, outKey, []byte(lgb), objstore.PutOptions{})
	require.NoError(t, err)
	got = must[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, TaskQueue: "py", Output: pipeline.ExternalTrainOutput{ArtifactURI: ein.OutputURI, Format: pipeline.FormatLightGBM, TrainRows: 10}})
	staged, _, err = objstore.ReadAll(ctx, e.store, got.ArtifactKey)
	require.NoError(t, err)
	require.Contains(t, string(staged), "lightgbm-text")
	ev = must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: step, ArtifactKey: got.ArtifactKey})
	require.Positive(t, ev.CandidateMAE)
	// A trainer may leave the format to detection.
	got = must[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, TaskQueue: "py", Output: pipeline.ExternalTrainOutput{ArtifactURI: ein.OutputURI, TrainRows: 10}})
	staged, _, err = objstore.ReadAll(ctx, e.store, got.ArtifactKey)
	require.NoError(t, err)
	require.Contains(t, string(staged), "lightgbm-text")
	// A spec may name a model file instead of a trainer: the built-in train step adopts it.
	_, err = e.store.Put(ctx, "models/demand/offline.txt", []byte(lgb), objstore.PutOptions{})
	require.NoError(t, err)
	fileSpec := e.spec
	fileSpec.Trainer = spec.Trainer{Name: "file", ModelFile: e.store.URI("models/demand/offline.txt")}
	fileStep := step
	fileStep.Spec = fileSpec
	got = must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: fileStep})
	staged, _, err = objstore.ReadAll(ctx, e.store, got.ArtifactKey)
	require.NoError(t, err)
	require.Contains(t, string(staged), "file:models/demand/offline.txt")
	fileStep.Spec.Trainer.ModelFile = "s3://elsewhere/offline.txt"
	_, err = call[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: fileStep})
	require.ErrorContains(t, err, "is not in")
	// An ONNX graph whose input is not the spec's features is refused, naming both counts.
	onx, err := os.ReadFile("../model/testdata/onnx/hand_eq_opset3.onnx")
	require.NoError(t, err)
	_, err = e.store.Put(ctx, outKey, onx, objstore.PutOptions{})
	require.NoError(t, err)
	_, err = call[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, TaskQueue: "py", Output: pipeline.ExternalTrainOutput{ArtifactURI: ein.OutputURI}})
	require.ErrorContains(t, err, "has 3 features, 5 names given")
	_, err = call[pipeline.TrainResult](e, tr.AdoptExternal, pipeline.AdoptInput{StepInput: step, Output: pipeline.ExternalTrainOutput{ArtifactURI: "s3://elsewhere/m.json"}})
	require.ErrorContains(t, err, "is not in")
}

func loadSnap(t *testing.T, e *env, key string) dataset.Snapshot {
	t.Helper()
	raw, _, err := objstore.ReadAll(context.Background(), e.store, key)
	require.NoError(t, err)
	var s dataset.Snapshot
	require.NoError(t, json.Unmarshal(raw, &s))
	return s
}

var testLabelKey = []byte("activities-test-label-key-activities-test-label-key")

// A nullable numeric feature that holds nulls, end to end: the one pass counts them in the
// profile instead of turning the mean into NaN, gbdt routes them as missing, registration
// stores the profile, and the next run's drift report gives the null share and its change.
func TestNullableFeatureThroughTheLoop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	type row struct {
		Date            string   `parquet:"date"`
		StoreID         int32    `parquet:"store_id"`
		ItemID          int32    `parquet:"item_id"`
		Region          string   `parquet:"region"`
		Price           float64  `parquet:"price"`
		Promo           int32    `parquet:"promo"`
		Weekday         int32    `parquet:"weekday"`
		Temperature     *float64 `parquet:"temperature,optional"`
		ItemPopularity  float64  `parquet:"item_popularity"`
		CompetitorPrice float64  `parquet:"competitor_price"`
		UnitsSold       float64  `parquet:"units_sold"`
	}
	cfg := dataset.DefaultRetail()
	cfg.BadRowShare = 0
	write := func(ds string, day int, nullEvery int) {
		var rows []row
		for i, r := range cfg.RetailDay(day) {
			t := r.Temperature
			x := row{Date: r.Date, StoreID: r.StoreID, ItemID: r.ItemID, Region: r.Region, Price: r.Price, Promo: r.Promo, Weekday: r.Weekday,
				Temperature: &t, ItemPopularity: r.ItemPopularity, CompetitorPrice: r.CompetitorPrice, UnitsSold: r.UnitsSold}
			if i%nullEvery == 0 {
				x.Temperature = nil // the sensor was down
			}
			rows = append(rows, x)
		}
		data, err := dataset.EncodeParquet(rows)
		require.NoError(t, err)
		_, err = e.store.Put(ctx, dataset.PartitionPrefix(ds, cfg.Start.AddDate(0, 0, day))+"part-0000.parquet", data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	sp := e.spec
	sp.Dataset.Name = "retail_nullable"
	for i, c := range sp.Contract.Columns {
		if c.Name == "temperature" {
			sp.Contract.Columns[i].Nullable = true
		}
	}
	for day := range 28 {
		write(sp.Dataset.Name, day, 10) // 10% nulls
	}
	e.spec = sp
	_, drr, ev, rr, _ := e.cycle("null-1", "2026-09-01", "2026-09-28")
	require.Zero(t, drr.ReferenceVersion)
	require.False(t, math.IsNaN(ev.CandidateMAE))
	require.Less(t, ev.CandidateMAE, sp.Evaluation.MaxMAE, "gbdt routes the nulls as missing values")
	prof, err := registry.New(e.store).LoadProfile(ctx, "demand", rr.Version)
	require.NoError(t, err)
	temp, ok := prof.Feature("temperature")
	require.True(t, ok)
	require.InDelta(t, 0.1, float64(temp.Nulls)/float64(temp.Nulls+temp.Count), 0.01, "the profile counts the nulls")
	require.False(t, math.IsNaN(temp.Mean))
	must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "null-1", Version: rr.Version})

	// A later window with more nulls (30%): the drift report shows the share and its change.
	sp.Dataset.Name = "retail_nullable2"
	e.spec = sp
	for day := range 28 {
		write(sp.Dataset.Name, day, 3)
	}
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "null-2", Dataset: sp.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	ins := must[pipeline.InspectResult](e, d.Inspect, pipeline.StepInput{Model: "demand", RunID: "null-2", Spec: sp, SnapshotKey: snap.Key})
	require.Equal(t, rr.Version, ins.Drift.ReferenceVersion)
	raw, _, err := objstore.ReadAll(ctx, e.store, "reports/demand/null-2/drift.json")
	require.NoError(t, err)
	var rep DriftReport
	require.NoError(t, json.Unmarshal(raw, &rep))
	for _, f := range rep.Features {
		if f.Name == "temperature" {
			require.InDelta(t, 0.33, f.NullShare, 0.01)
			require.InDelta(t, 0.10, f.ReferenceNullShare, 0.01)
			return
		}
	}
	t.Fatal("no temperature in the drift report")
}

// On MinIO a gbdt bounded by trainer.max_rows trains on a sample of its training days, and
// the version's lineage says so: the rows, what they were drawn from, the rate, each day's
// rows; the train step's result says how many rows it was drawn from.
func TestASampledTrainingIsInTheLineage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.spec.Trainer.MaxRows = 600
	step, _, ev, rr, _ := e.cycle("sampled", "2026-09-01", "2026-09-28")
	require.Positive(t, ev.CandidateMAE)
	v, err := registry.New(e.store).Version(ctx, "demand", rr.Version)
	require.NoError(t, err)
	ts := v.Lineage.TrainingSample
	require.NotNil(t, ts, "the lineage records the sample")
	require.InDelta(t, 600, ts.Rows, 120)
	require.Equal(t, int64(21*120), ts.Of, "the 21 training days' rows (7 held out)")
	require.InDelta(t, 600.0/(21*120), ts.Rate, 1e-12)
	require.Len(t, ts.Days, 21)
	var sum int64
	for _, d := range ts.Days {
		sum += d.Rows
	}
	require.Equal(t, ts.Rows, sum)
	var trr pipeline.TrainResult
	trr, err = call[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: step})
	require.NoError(t, err)
	require.Equal(t, ts.Of, trr.SampledFrom)
	require.Equal(t, int(ts.Rows), trr.TrainRows, "a retried train step draws the same sample")
}
