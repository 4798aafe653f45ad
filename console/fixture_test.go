package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

// The known run every console test reads: model demand with v1 and v2 (v2 production, v1
// previous), run "run-2" that registered v2 (drift, evaluation with segments, policy,
// approval, two canary steps, its outcome written by the loop's own RecordOutcome), three
// monitoring windows, and a second model, secret, that alice may not view. A feature and a
// segment carry markup in their names: the console must show it, never run it.

const (
	hostileFeature = `<script>alert("x")</script>`
	hostileSegment = `<img src=x onerror=alert(1)>`
)

var secret = []byte("console-test-secret-of-at-least-32-bytes!")

type fixture struct {
	store objstore.Bucket
	srv   *Server
	t0    time.Time
}

func mustJSON(t *testing.T, b objstore.Bucket, key string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	_, err = b.Put(context.Background(), key, data, objstore.PutOptions{})
	require.NoError(t, err)
}

// artifact is a small model the registry accepts (it checks what it stores); the console
// never loads it.
func artifact(t *testing.T) []byte {
	t.Helper()
	lin, err := model.TrainRidge([][]float64{{1, 2, 3, 4}}, []float64{2, 4, 6, 8}, 0)
	require.NoError(t, err)
	data, err := (&model.Model{Family: "linear", Trainer: "ridge", Features: []string{"x"}, Target: "y", Linear: lin}).Marshal()
	require.NoError(t, err)
	return data
}

// driftReport is a real drift report: price shifted, the hostile feature not.
func driftReport(t *testing.T) drift.Report {
	b := drift.NewProfileBuilder([]string{"price", hostileFeature, "region"}, []string{drift.Numeric, drift.Numeric, drift.Categorical})
	for r := range 4000 {
		b.AddNumeric(0, float64(r%100), uint64(r))
		b.AddNumeric(1, float64(r%10), uint64(r))
		b.AddCategory(2, []string{"north", "south"}[r%2])
	}
	w := drift.NewWindow(b.Profile())
	for r := range 4000 {
		w.AddNumeric(0, float64(r%100)+40, uint64(r))
		w.AddNumeric(1, float64(r%10), uint64(r))
		w.AddCategory(2, []string{"north", "south", "east"}[r%3])
	}
	return w.Report(drift.DefaultConfig())
}

func seed(t *testing.T) fixture {
	ctx := context.Background()
	b := objstore.NewMem()
	reg := registry.New(b)
	prof, err := drift.NewProfile([]string{"x"}, [][]float64{{1, 2, 3}})
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i, run := range []string{"run-1", "run-2"} {
		v := registry.Version{Model: "demand", Lineage: registry.Lineage{RunID: run, CreatedBy: "driftline", Trainer: "gbdt", SpecHash: "5pec0123456789", CodeRevision: "c0de4567",
			SnapshotID: "snap-" + run, SnapshotURI: "s3://lake/snapshots/demand/snap-" + run + ".json",
			SnapshotFiles: []registry.SnapshotFile{{Key: "datasets/retail/dt=2026-11-01/part-0.parquet", ETag: "e1", Rows: 150000}, {Key: "datasets/retail/dt=2026-11-02/part-0.parquet", ETag: "e2", Rows: 149000}},
			Reports:       map[string]string{"validation": "s3://lake/reports/demand/" + run + "/validation.json", "drift": "s3://lake/reports/demand/" + run + "/drift.json", "evaluation": "s3://lake/reports/demand/" + run + "/evaluation.json"}},
			Metrics: map[string]float64{"holdout_mae": []float64{2.789, 2.3456}[i]}}
		if i == 1 {
			v.Metrics["champion_mae"] = 2.789
			v.Lineage.Table = &registry.TableVersion{Format: "iceberg", URI: "iceberg+sql://lake/retail.demand", Version: 8797629078370162270,
				CommitTime: t0.Add(-time.Hour), Metadata: "s3://lake/warehouse/retail.db/demand/metadata/00001-a.metadata.json"}
		}
		v, err := reg.Register(ctx, v, artifact(t), prof, nil)
		require.NoError(t, err)
		_, err = reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Actor: "alice", RunID: run, Key: "promote-" + run},
			func(d *registry.Deployment) (bool, error) { return d.Promote(v.Version) })
		require.NoError(t, err)
	}
	_, err = reg.Register(ctx, registry.Version{Model: "secret", Lineage: registry.Lineage{RunID: "s-1"}, Metrics: map[string]float64{"holdout_mae": 9}}, artifact(t), prof, nil)
	require.NoError(t, err)

	step := func(name pipeline.Stage, at, secs float64, summary string) pipeline.Step {
		s := t0.Add(time.Duration(at * float64(time.Second)))
		return pipeline.Step{Name: name, Started: s, Finished: s.Add(time.Duration(secs * float64(time.Second))), Summary: summary}
	}
	st := pipeline.Status{Model: "demand", RequestedBy: "alice", Trigger: "schedule", Stage: pipeline.StageDone, Outcome: pipeline.OutcomePromoted,
		Reason: "canary passed every step", From: "2026-11-01", To: "2026-11-14", CandidateVersion: 2,
		Policy:    &pipeline.PolicyResult{Allow: true, ApprovalRequired: true, Reasons: []string{"MAE improves on the champion by 15.9%", "a human approves every production change"}, Revision: "rev-7f3a"},
		Approval:  &pipeline.Approval{Approver: "alice", Groups: []string{"ml-platform"}, Reason: "segments look right", Version: 2, Attestation: "eyJ..."},
		Approvers: []string{"user:alice", "group:ml-platform"},
		Canary: []pipeline.CanaryEvalResult{
			{Decision: pipeline.CanaryWait, Reason: "every guardrail holds", Step: 1, Share: 0.1,
				Candidate: pipeline.RouteStats{Version: 2, Requests: 412, Errors: 1, ErrorRate: 1.0 / 412, P99Ms: 3.25}, Production: pipeline.RouteStats{Version: 1, Requests: 3710, Errors: 4, ErrorRate: 4.0 / 3710, P99Ms: 3.5}},
			{Decision: pipeline.CanaryPromote, Reason: "live MAE no worse (log evidence 0.4)", Step: 2, Share: 0.5,
				Candidate: pipeline.RouteStats{Version: 2, Requests: 2044, ErrorRate: 0, P99Ms: 3.1}, Production: pipeline.RouteStats{Version: 1, Requests: 2051, ErrorRate: 0.001, P99Ms: 3.4},
				MAE: &pipeline.LiveMAE{CandidateLabels: 800, ProductionLabels: 790, Candidate: 2.41, Production: 2.83}},
		},
		Steps: []pipeline.Step{
			step(pipeline.StageSnapshot, 0, 1.2, "2 files, 299000 rows"), step(pipeline.StageValidate, 1.2, 3.4, "9990 accepted, 10 quarantined"),
			step(pipeline.StageDrift, 4.6, 2.1, "drifted: price"), step(pipeline.StageTrain, 6.7, 12.5, "gbdt, 180 trees"),
			step(pipeline.StageEvaluate, 19.2, 4.0, "MAE 2.346 vs champion 2.789"), step(pipeline.StagePolicy, 23.2, 0.1, "allowed, approval required"),
		}}
	rec := &activities.Registry{Store: b, Registry: reg}
	require.NoError(t, rec.RecordOutcome(ctx, pipeline.OutcomeInput{Model: "demand", RunID: "run-2", WorkflowID: pipeline.WorkflowID("demand"),
		Outcome: st.Outcome, Reason: st.Reason, Version: 2, Status: st}))
	require.NoError(t, rec.RecordOutcome(ctx, pipeline.OutcomeInput{Model: "demand", RunID: "run-1", WorkflowID: pipeline.WorkflowID("demand"),
		Outcome: pipeline.OutcomePromoted, Reason: "first version", Version: 1, Status: pipeline.Status{Model: "demand", From: "2026-10-18", To: "2026-10-31",
			Steps: []pipeline.Step{step(pipeline.StageSnapshot, -86400, 1, "")}}}))
	mustJSON(t, b, "reports/demand/run-2/drift.json", driftReport(t))
	f64 := func(v float64) *float64 { return &v }
	mustJSON(t, b, "reports/demand/run-2/evaluation.json", evaluate.Report{HoldoutFrom: "2026-11-12", HoldoutRows: 1000, CandidateMAE: 2.3456, ChampionVersion: 1, ChampionMAE: 2.789, Threshold: 5,
		SegmentBy: "region",
		Candidate: evaluate.ModelEvaluation{Overall: model.Metrics{Rows: 1000, MAE: 2.3456, RMSE: 3.1, R2: 0.81, MAPE: f64(0.12)},
			Segments: map[string]model.Metrics{"north": {Rows: 600, MAE: 2.1}, hostileSegment: {Rows: 400, MAE: 2.7}}},
		Champion: &evaluate.ModelEvaluation{Overall: model.Metrics{Rows: 1000, MAE: 2.789, RMSE: 3.6, R2: 0.74, MAPE: f64(0.15)},
			Segments: map[string]model.Metrics{"north": {Rows: 600, MAE: 2.5}, hostileSegment: {Rows: 400, MAE: 3.2}}}})
	mustJSON(t, b, "reports/demand/run-2/validation.json", dataset.ValidationReport{RowsRead: 10000, RowsAccepted: 9990, RowsQuarantined: 10, BadShare: 0.001, MaxBadShare: 0.01, Passed: true})
	for i := range 3 {
		until := t0.Add(time.Duration(i+1) * time.Hour)
		w := monitor.Report{Model: "demand", Version: 2, From: until.Add(-time.Hour), To: until,
			KPIs: monitor.KPIs{Requests: 1000 + 100*i, Errors: i, P50Ms: 1.1, P99Ms: 3 + float64(i), SLOMs: 50},
			Live: monitor.LiveErrors{Labels: 200 * i, MAE: []float64{0, 2.5, 2.75}[i]}, Estimated: &monitor.Estimate{Method: "dle", MAE: 2.4 + 0.1*float64(i), Requests: 1000 + 100*i}}
		mustJSON(t, b, "reports/demand/monitor/"+until.Format("20060102T150405Z")+".json", w)
	}

	engine, err := policies.NewEngine(ctx, policies.RBAC{Roles: map[string][]string{"viewer": {"view"}},
		Bindings: []policies.Binding{{Subject: "user:alice", Role: "viewer", Models: []string{"demand"}}, {Subject: "user:root", Role: "viewer", Models: []string{"*"}}}})
	require.NoError(t, err)
	srv := &Server{Store: b, Registry: reg, Verifier: api.DevHS256{Secret: secret}, Engine: engine,
		RunLink: func(m, run string) string {
			return "http://temporal.test:8233/namespaces/default/workflows/" + pipeline.WorkflowID(m) + "/" + run + "/history"
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return fixture{store: b, srv: srv, t0: t0}
}

func mint(t *testing.T, sub string) string {
	t.Helper()
	tok, err := api.MintDev(secret, sub, nil, time.Hour)
	require.NoError(t, err)
	return tok
}

// get fetches a page as sub ("" without a token), not following redirects.
func get(t *testing.T, h http.Handler, sub, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if sub != "" {
		r.Header.Set("Authorization", "Bearer "+mint(t, sub))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func postForm(h http.Handler, path string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func httptestReq(h http.Handler, method, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func httptestCookie(h http.Handler, path string, c *http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
