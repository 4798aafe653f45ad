package activities

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// A fairness review's events on MinIO, a webhook and a real Alertmanager: each is stored and
// audited once (a retry appends nothing), the webhook gets a readable message per event, and
// Alertmanager shows the review as a ticket while open, a page once escalated, and nothing
// once closed. The review's rollback puts the previous version back only while the reviewed
// one is production, and a retry changes nothing.
func TestReviewActivitiesOnMinIO(t *testing.T) {
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		m["idempotency"] = r.Header.Get("Idempotency-Key")
		mu.Lock()
		hooks = append(hooks, m)
		mu.Unlock()
	}))
	defer hook.Close()
	am := stack.StartAlertmanager(t, "route: {receiver: none}\nreceivers: [{name: none}]\n")
	metrics := NewMonitorMetrics(prometheus.NewRegistry())
	reg := registry.New(store)
	mon := &Monitoring{Store: store, Registry: reg, Metrics: metrics, Webhook: hook.URL, Alertmanager: am, Keys: originKeys}
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	te.RegisterActivity(mon)

	now := time.Now().UTC().Truncate(time.Second)
	r := pipeline.FairnessReview{ID: "fairness-20261201T150000Z", Model: "demand", Version: 2, OpenedAt: now.Add(-2 * time.Hour), Deadline: now.Add(time.Hour),
		Report: "s3://b/reports/demand/monitor/w.json", Attribute: "region", DisparateImpact: 0.62, Low: 0.55, High: 0.7, Floor: 0.8,
		Reviewers: []string{"user:alice"}, EscalateTo: []string{"group:ml-platform"}}
	event := func(what string) {
		t.Helper()
		for range 2 { // the second is a retry
			_, err := te.ExecuteActivity(mon.RecordReview, pipeline.ReviewNotice{Review: r, Event: what})
			require.NoError(t, err)
		}
		_, err := te.ExecuteActivity(mon.NotifyReview, pipeline.ReviewNotice{Review: r, Event: what})
		require.NoError(t, err)
	}
	alerts := func() map[string]bool { // severity -> active
		t.Helper()
		resp, err := http.Get(am + "/api/v2/alerts?filter=" + url.QueryEscape(`alertname="FairnessReview"`))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var got []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				State string `json:"state"`
			} `json:"status"`
		}
		require.NoError(t, json.Unmarshal(body, &got), "%s", body)
		out := map[string]bool{}
		for _, a := range got {
			require.Equal(t, r.ID, a.Labels["review"])
			require.Equal(t, "demand", a.Labels["model"])
			out[a.Labels["severity"]] = a.Status.State == "active"
		}
		return out
	}

	event("opened")
	require.Equal(t, map[string]bool{"ticket": true}, alerts())
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.ReviewOpen.WithLabelValues("demand")))
	r.Deadline = now.Add(-time.Minute) // as if the hour had passed
	r.Escalated, r.EscalatedAt = true, now
	event("escalated")
	require.Equal(t, map[string]bool{"page": true}, alerts(), "the ticket resolves, the page fires")
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.ReviewEscalated.WithLabelValues("demand")))
	r.Decision, r.By, r.Reason, r.AttestationID, r.Outcome = "accept", "alice", "seasonal staffing", "jti-1", "accepted: nothing changed"
	event("closed")
	require.Empty(t, alerts(), "closed: nothing active")
	require.Equal(t, 0.0, testutil.ToFloat64(metrics.ReviewOpen.WithLabelValues("demand")))

	data, _, err := objstore.ReadAll(ctx, store, "reports/demand/monitor/reviews/fairness-20261201T150000Z.json")
	require.NoError(t, err)
	var stored pipeline.FairnessReview
	require.NoError(t, json.Unmarshal(data, &stored))
	require.Equal(t, "accept", stored.Decision)
	recs, err := audit.Log{Store: store}.List(ctx, "demand", now.Add(-3*time.Hour))
	require.NoError(t, err)
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Actor+" "+rec.Action+" "+rec.Decision)
	}
	require.Equal(t, []string{"monitor/demand fairness_review_opened ", "monitor/demand fairness_review_escalated ", "alice fairness_review_closed accept"}, got,
		"each event once, the decision under the attested reviewer")
	require.Len(t, hooks, 3)
	require.Contains(t, hooks[0]["text"], "disparate impact of region 0.620 [0.550, 0.700] is under the floor 0.80")
	require.Contains(t, hooks[0]["text"], "driftline monitor ack --model demand --review fairness-20261201T150000Z")
	require.Contains(t, hooks[1]["text"], "ESCALATED")
	require.Contains(t, hooks[1]["text"], "group:ml-platform")
	require.Contains(t, hooks[2]["text"], "closed: accept by alice (seasonal staffing)")
	require.Equal(t, "fairness-20261201T150000Z/escalated", hooks[1]["idempotency"])

	// The rollback.
	_, err = reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Actor: "test", Key: "setup"}, func(d *registry.Deployment) (bool, error) {
		d.Production, d.Previous = 2, 1
		return true, nil
	})
	require.NoError(t, err)
	ack := func(review string, version int, decision string) string {
		now := time.Now()
		return pipeline.SignAttestation(originKey, "test", pipeline.Attested{Kind: pipeline.KindReview, Model: "demand", Version: version, Review: review,
			Decision: decision, Subject: "alice", IssuedAt: now.Unix(), Expires: now.Add(10 * time.Minute).Unix(), ID: "ack-" + review, Issuer: "test"})
	}
	// A monitor someone started outside the API (no origin), or an acknowledgement that is not
	// an attested rollback of this review: refused and audited, production untouched.
	for _, bad := range []pipeline.ReviewRollbackInput{
		{Model: "demand", Review: r.ID, Actor: "alice", Reason: "x", FromVersion: 2, Attestation: ack(r.ID, 2, pipeline.ReviewRollback)},
		{Model: "demand", Review: r.ID, Actor: "alice", Reason: "x", FromVersion: 2, Attestation: ack(r.ID, 2, pipeline.ReviewAccept), Origin: origin(pipeline.KindMonitor, "demand", "dave")},
		{Model: "demand", Review: r.ID, Actor: "alice", Reason: "x", FromVersion: 2, Attestation: ack("fairness-other", 2, pipeline.ReviewRollback), Origin: origin(pipeline.KindMonitor, "demand", "dave")},
		{Model: "demand", Review: r.ID, Actor: "alice", Reason: "x", FromVersion: 2, Attestation: ack(r.ID, 2, pipeline.ReviewRollback), Origin: origin(pipeline.KindMonitor, "returns", "dave")},
	} {
		_, err := te.ExecuteActivity(mon.ReviewRollback, bad)
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		require.True(t, app.NonRetryable())
		require.Contains(t, err.Error(), "refused")
	}
	d, _, err := reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 2, d.Production, "nothing refused touched production")
	recs, err = audit.Log{Store: store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	refusals := 0
	for _, rec := range recs {
		if rec.Action == "review_rollback_refused" {
			refusals++
		}
	}
	require.Equal(t, 4, refusals, "every refusal audited")

	in := pipeline.ReviewRollbackInput{Model: "demand", Review: r.ID, Actor: "alice", Reason: "fairness review: rollback", FromVersion: 2,
		Attestation: ack(r.ID, 2, pipeline.ReviewRollback), Origin: origin(pipeline.KindMonitor, "demand", "dave")}
	for range 2 {
		v, err := te.ExecuteActivity(mon.ReviewRollback, in)
		require.NoError(t, err)
		var out string
		require.NoError(t, v.Get(&out))
		require.Equal(t, "production rolled back from v2 to v1", out)
	}
	d, _, err = reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, d.Production)
	require.Equal(t, "alice", d.UpdatedBy)
	in.Review, in.FromVersion, in.Attestation = "fairness-later", 3, ack("fairness-later", 3, pipeline.ReviewRollback)
	_, err = te.ExecuteActivity(mon.ReviewRollback, in)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable())
	require.Contains(t, err.Error(), "production of demand is v1, not the reviewed v3")
}

// A run's outcome adds up its steps' accounting (on MinIO): the outcome report and the
// version the run registered carry the cost, and the gauge shows it per model and version.
func TestRecordOutcomeAddsTheRunsCost(t *testing.T) {
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	m := NewMetrics(prometheus.NewRegistry())
	rg := &Registry{Store: store, Registry: registry.New(store), Metrics: m}
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	te.RegisterActivity(rg)
	for i, c := range []StepCost{{Step: "Inspect", ActivityID: "5", Attempt: 1, CPUSeconds: 1.5, WallSeconds: 2},
		{Step: "Train", ActivityID: "9", Attempt: 1, Result: "error", CPUSeconds: 4, WallSeconds: 5},
		{Step: "Train", ActivityID: "9", Attempt: 2, CPUSeconds: 6.25, WallSeconds: 7}} {
		body, _ := json.Marshal(c)
		_, err := store.Put(ctx, CostKey("demand", "run-7", c.ActivityID, c.Attempt), body, objstore.PutOptions{})
		require.NoError(t, err, "record %d", i)
	}
	_, err := te.ExecuteActivity(rg.RecordOutcome, pipeline.OutcomeInput{Model: "demand", RunID: "run-7", Outcome: pipeline.OutcomePromoted, Version: 3})
	require.NoError(t, err)
	data, _, err := objstore.ReadAll(ctx, store, "reports/demand/run-7/outcome.json")
	require.NoError(t, err)
	var out struct {
		Outcome pipeline.Outcome
		Cost    RunCost `json:"cost"`
	}
	require.NoError(t, json.Unmarshal(data, &out))
	want := RunCost{CPUSeconds: 11.75, WallSeconds: 14, Steps: map[string]float64{"Inspect": 1.5, "Train": 10.25}, Attempts: 3}
	require.Equal(t, want, out.Cost, "retries count: they were spent")
	require.Equal(t, pipeline.OutcomePromoted, out.Outcome)
	data, _, err = objstore.ReadAll(ctx, store, registry.RecordKey("demand", 3, CostRecordKind, "run-7"))
	require.NoError(t, err)
	var kept RunCost
	require.NoError(t, json.Unmarshal(data, &kept))
	require.Equal(t, want, kept)
	require.Equal(t, 11.75, testutil.ToFloat64(m.RunCPU.WithLabelValues("demand", "3")))
}
