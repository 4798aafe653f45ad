package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

func specBody(t *testing.T, yaml, reason string) string {
	b, err := json.Marshal(SpecRequest{Spec: yaml, Reason: reason})
	require.NoError(t, err)
	return string(b)
}

// A data scientist cannot loosen what another role owns: approval, thresholds, canary
// guardrails and PII flags are governed fields (change_governance); the rest of the spec is
// theirs. Nobody can loosen an organisation floor. Every attempt is refused and audited.
func TestADataScientistCannotLoosenGovernance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := specYAML(t)
	dave := f.idp.token(t, "ES256", "dave", nil)
	grace := f.idp.token(t, "RS256", "grace", nil)
	path := "/v1/models/demand/spec"

	noApproval := strings.Replace(base, "required: true", "required: false", 1)
	laxCanary := strings.Replace(base, "min_labels: 2000", "min_labels: 10", 1)
	laxThreshold := strings.Replace(base, "max_mae: 6.0", "max_mae: 600.0", 1)
	breakGlass := strings.Replace(base, "timeout: 24h", "timeout: 24h\n  break_glass: true", 1)
	pii := strings.Replace(base, "{name: store_id, type: int, role: entity_key, min: 1}", "{name: store_id, type: int, role: entity_key, min: 1, pii: true}", 1)
	for name, y := range map[string]string{"approval off": noApproval, "lax canary": laxCanary, "lax threshold": laxThreshold,
		"break-glass on": breakGlass, "a PII flag": pii} {
		code, out := f.call(t, "PUT", path, dave, specBody(t, y, name))
		require.Equal(t, 403, code, "%s: %v", name, out)
		require.Contains(t, out["error"], "may not change_governance on model demand", name)
	}
	_, ver, _, err := f.reg.CurrentSpec(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, ver.Version, "nothing was applied")

	// The data scientist's own fields: applied, versioned, the diff audited.
	tuned := strings.Replace(base, "interval: 5m", "interval: 10m", 1)
	code, out := f.call(t, "PUT", path, dave, specBody(t, tuned, "longer windows"))
	require.Equal(t, 200, code, out)
	require.EqualValues(t, 2, out["version"])
	require.Nil(t, out["governance_changes"])
	require.Equal(t, []any{map[string]any{"path": "monitoring.interval", "from": "5m0s", "to": "10m0s"}}, out["changes"])

	// The governance role may change governed fields, within the organisation's floors.
	code, out = f.call(t, "PUT", path, grace, specBody(t, strings.Replace(tuned, "required: true", "required: false", 1), "approval by the floor only"))
	require.Equal(t, 200, code, out)
	require.Equal(t, []any{"approval.required"}, out["governance_changes"])
	code, out = f.call(t, "PUT", path, grace, specBody(t, laxCanary, "faster canaries"))
	require.Equal(t, 403, code, out)
	require.Contains(t, out["error"], "canary.min_labels is 10, under the organisation's floor 200 for model demand")
	// A stale read loses: the caller names the version it read.
	stale := 1
	b, _ := json.Marshal(SpecRequest{Spec: base, Reason: "back", ExpectedVersion: &stale})
	code, out = f.call(t, "PUT", path, grace, string(b))
	require.Equal(t, 409, code, out)

	recs, err := audit.Log{Store: f.store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var seen []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "change_spec") {
			seen = append(seen, r.Actor+" "+r.Action)
		}
	}
	require.Len(t, seen, 9)
	require.Equal(t, 5, strings.Count(strings.Join(seen, ","), "dave change_spec_forbidden"))
	require.Contains(t, seen, "dave change_spec")
	require.Contains(t, seen, "grace change_spec_forbidden", "the floor's refusal")

	// Runs name a model, never a spec: the inline YAML of before is refused.
	code, out = f.call(t, "POST", "/v1/runs", dave, `{"spec":"model: demand","model":"demand"}`)
	require.Equal(t, 400, code, out)
	require.Contains(t, out["error"], `unknown field "spec"`)
}

// A run, a monitor and a schedule started through the API carry the registered spec (never
// one the caller sent) and the API's origin attestation of who started them; whether the
// dataset holds personal data is the registered contract's word.
func TestRunsCarryTheRegisteredSpecAndAnOrigin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dave := f.idp.token(t, "ES256", "dave", nil)
	code, out := f.call(t, "POST", "/v1/runs", dave, `{"model":"demand","force":true}`)
	require.Equal(t, 200, code, out)
	_, ver, _, err := f.reg.CurrentSpec(ctx, "demand")
	require.NoError(t, err)
	in := f.runs.started[0]
	require.Equal(t, ver.Hash, in.Spec.Hash)
	require.Equal(t, 1, in.SpecVersion)
	att, err := pipeline.VerifyOrigin(in.Origin, []pipeline.AttestationKey{f.att.Key()}, "demand", time.Now(), time.Now())
	require.NoError(t, err)
	require.Equal(t, pipeline.KindRun, att.Kind)
	require.Equal(t, "dave", att.Subject)
	require.Equal(t, ver.Hash, att.SpecHash)
	_, err = pipeline.VerifyOrigin(in.Origin, []pipeline.AttestationKey{f.att.Key()}, "demand", time.Now().Add(time.Hour), time.Now())
	require.ErrorContains(t, err, "it belongs to another run", "a run's origin is bound to the run's start")
	_, err = pipeline.VerifyOrigin(in.Origin, []pipeline.AttestationKey{f.att.Key()}, "returns", time.Now(), time.Now())
	require.ErrorContains(t, err, "the origin is for model demand")

	code, out = f.call(t, "PUT", "/v1/models/demand/monitor", dave, `{}`)
	require.Equal(t, 200, code, out)
	mon, err := pipeline.VerifyOrigin(f.runs.monitor[0].Origin, []pipeline.AttestationKey{f.att.Key()}, "demand", time.Time{}, time.Now().Add(365*24*time.Hour))
	require.NoError(t, err, "a monitor's origin lasts as long as the monitor")
	require.Equal(t, pipeline.KindMonitor, mon.Kind)
	code, out = f.call(t, "PUT", "/v1/models/demand/schedule", dave, `{"cron":"0 3 * * *"}`)
	require.Equal(t, 200, code, out)
	sched, err := pipeline.VerifyOrigin(f.runs.scheduled[0].Origin, []pipeline.AttestationKey{f.att.Key()}, "demand", time.Time{}, time.Now())
	require.NoError(t, err)
	require.Equal(t, pipeline.KindSchedule, sched.Kind)

	// PII: the registered contract flags a column; dave (no read_pii) may not run on it, and
	// nothing in his request can say otherwise.
	grace := f.idp.token(t, "RS256", "grace", nil)
	pii := strings.Replace(specYAML(t), "{name: store_id, type: int, role: entity_key, min: 1}", "{name: store_id, type: int, role: entity_key, min: 1, pii: true}", 1)
	code, out = f.call(t, "PUT", "/v1/models/demand/spec", grace, specBody(t, pii, "store ids identify franchisees"))
	require.Equal(t, 200, code, out)
	code, out = f.call(t, "POST", "/v1/runs", dave, `{"model":"demand"}`)
	require.Equal(t, 403, code, out)
	require.Contains(t, out["error"], "may not read_dataset on model demand")
	require.Len(t, f.runs.started, 1)
}

// Schedules fire at most once an hour (a cron of every second is refused, naming the gap);
// materialization runs only on the configured queues.
func TestSchedulesAndMaterializationAreBounded(t *testing.T) {
	f := newFixture(t)
	dave := f.idp.token(t, "ES256", "dave", nil)
	for _, cron := range []string{"@every 1s", "*/5 * * * *", "0,30 3 * * *", "not a cron", ""} {
		code, out := f.call(t, "PUT", "/v1/models/demand/schedule", dave, `{"cron":"`+cron+`"}`)
		require.Equal(t, 400, code, "%q: %v", cron, out)
	}
	code, out := f.call(t, "PUT", "/v1/models/demand/schedule", dave, `{"cron":"@every 1s"}`)
	require.Equal(t, 400, code)
	require.Contains(t, out["error"], `cron "@every 1s" fires 1s apart`)
	for _, cron := range []string{"0 3 * * *", "0 * * * *", "@daily", "@every 2h"} {
		code, out := f.call(t, "PUT", "/v1/models/demand/schedule", dave, `{"cron":"`+cron+`"}`)
		require.Equal(t, 200, code, "%q: %v", cron, out)
	}
	code, out = f.call(t, "POST", "/v1/features/retail/materialize", dave,
		`{"model":"demand","view":"demand_history","from":"2026-10-01","to":"2026-10-02","task_queue":"someone-elses-queue"}`)
	require.Equal(t, 400, code, out)
	require.Contains(t, out["error"], `task queue "someone-elses-queue" is not one of the API's feature queues`)
	require.Empty(t, f.runs.materialize)
}

// A name that cannot name a model never becomes part of an audit key: refused (400) and
// audited in the chain of invalid names, so `audit verify` stays clean and the model's chain
// keeps taking records.
func TestInvalidNamesNeverBecomeAuditKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	day := time.Now().UTC().Format("2006/01/02")
	for _, bad := range []string{"demand/000000000005.json", "demand/x", "../heads", "DEMAND", strings.Repeat("a", 80), "demand%00"} {
		for _, p := range []string{"/v1/models/" + url.PathEscape(bad) + "/promote", "/v1/models/" + url.PathEscape(bad) + "/rollback"} {
			code, out := f.call(t, "POST", p, "", `{"reason":"x"}`)
			require.Equal(t, 400, code, "%s: %v", p, out)
		}
	}
	objs, err := f.store.List(ctx, "audit/"+day+"/")
	require.NoError(t, err)
	for _, o := range objs {
		chain := strings.SplitN(strings.TrimPrefix(o.Key, "audit/"+day+"/"), "/", 2)[0]
		require.Contains(t, []string{"_invalid", "demand"}, chain, o.Key)
	}
	reps, probs, err := audit.Log{Store: f.store}.Verify(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, probs)
	for _, r := range reps {
		require.Empty(t, r.Planted, r.Chain)
	}
	erin := f.idp.token(t, "EdDSA", "erin", []string{"ml-platform"})
	code, out := f.call(t, "POST", "/v1/models/demand/promote", erin, `{"version":2,"reason":"after the refusals"}`)
	require.Equal(t, 200, code, out)
}

// failingAudit refuses every write under audit/.
type failingAudit struct{ objstore.Bucket }

func (b failingAudit) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	if strings.HasPrefix(key, "audit/") {
		return objstore.Object{}, errors.New("audit bucket unavailable")
	}
	return b.Bucket.Put(ctx, key, body, opts)
}

// A mutation whose audit record cannot be written is not carried out: 503, nothing changed,
// nothing reached Temporal.
func TestAMutationIsNotCarriedOutWhenItsAuditCannotBeWritten(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.server.Audit = audit.Log{Store: failingAudit{f.store}}
	before, tag, err := f.reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	erin := f.idp.token(t, "EdDSA", "erin", []string{"ml-platform"})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/models/demand/promote", `{"version":2,"reason":"x"}`},
		{"POST", "/v1/models/demand/rollback", `{"reason":"x"}`},
		{"POST", "/v1/runs", `{"model":"demand"}`},
		{"PUT", "/v1/models/demand/monitor", `{}`},
		{"PUT", "/v1/models/demand/schedule", `{"cron":"0 3 * * *"}`},
		{"POST", "/v1/models/demand/approvals", `{"version":2,"decision":"approve","reason":"x"}`},
		{"PUT", "/v1/models/demand/spec", specBody(t, strings.Replace(specYAML(t), "interval: 5m", "interval: 7m", 1), "x")},
	} {
		code, out := f.call(t, c.method, c.path, erin, c.body)
		require.Equal(t, 503, code, "%s %s: %v", c.method, c.path, out)
		require.Contains(t, out["error"], "the audit trail cannot be written, so nothing was changed")
	}
	after, tag2, err := f.reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, tag, tag2)
	require.Equal(t, before, after)
	require.Zero(t, f.runs.calls, "nothing reached Temporal")
	_, ver, _, err := f.reg.CurrentSpec(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, ver.Version)
}

// Anonymous callers cost the audit trail one record a minute: 2,000 refused calls naming
// 2,000 different models (sent 50 at a time) leave no chain per model and no record per call,
// but every call counted by source, action and reason.
func TestAnonymousRefusalsAreAggregated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range 2000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, _ := f.call(t, "POST", fmt.Sprintf("/v1/models/model-%d/rollback", i), "", `{"reason":"x"}`)
			require.Equal(t, 401, code)
		}()
	}
	wg.Wait()
	require.NoError(t, f.server.FlushRefusals(ctx))
	objs, err := f.store.List(ctx, "audit/"+time.Now().UTC().Format("2006/01/02")+"/")
	require.NoError(t, err)
	for _, o := range objs {
		require.NotContains(t, o.Key, "/model-", "no chain per model name tried")
	}
	recs, err := audit.Log{Store: f.store}.List(ctx, "", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	total, records := 0, 0
	for _, r := range recs {
		if r.Action != "refused_anonymous" {
			continue
		}
		records++
		for _, l := range r.Details["counts"].([]any) {
			line := l.(map[string]any)
			require.Equal(t, "127.0.0.1", line["source"])
			require.Equal(t, "rollback_unauthenticated", line["action"])
			total += int(line["count"].(float64))
		}
	}
	require.Equal(t, 2000, total)
	require.LessOrEqual(t, records, 2, "a record a minute (the calls may straddle two), not one per call")
}

// A feature repository belongs to the model group that first applied it: change_features on
// a model of another group neither rewrites it nor materializes it (serving reads it).
func TestFeatureRepositoriesBelongToTheirModelGroup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	defs, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	_, _, err = features.Apply(ctx, f.store, "fraud_signals", defs, "", "ivan", "the fraud team's", "group:fraud")
	require.NoError(t, err)
	dave := f.idp.token(t, "ES256", "dave", nil)
	b, _ := json.Marshal(FeaturesRequest{Definitions: string(defs), Model: "demand", Reason: "ours now"})
	code, out := f.call(t, "PUT", "/v1/features/fraud_signals", dave, string(b))
	require.Equal(t, 403, code, out)
	require.Contains(t, out["error"], "feature repository fraud_signals belongs to group:fraud; model demand is not one of its models")
	code, out = f.call(t, "POST", "/v1/features/fraud_signals/materialize", dave,
		`{"model":"demand","view":"demand_history","from":"2026-10-01","to":"2026-10-02"}`)
	require.Equal(t, 403, code, out)
	require.Empty(t, f.runs.materialize)
	// A new repository is owned by the group of the model that applies it first.
	code, out = f.call(t, "PUT", "/v1/features/retail", dave, string(b))
	require.Equal(t, 200, code, out)
	applied, _, _, _, err := features.Current(ctx, f.store, "retail")
	require.NoError(t, err)
	require.Equal(t, "group:retail", applied.Owner)
}

// Reads go through the API with view on the model read: alice (an approver of demand) reads
// demand's audit trail, a run's status and its reports, and nothing of another model or of
// every model; strangers and anonymous callers read nothing.
func TestReadsNeedViewOnTheModel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.store.Put(ctx, "reports/demand/run-1/drift.json", []byte(`{"drifted":true}`), objstore.PutOptions{})
	require.NoError(t, err)
	_, err = f.store.Put(ctx, "reports/returns/run-9/drift.json", []byte(`{"drifted":false}`), objstore.PutOptions{})
	require.NoError(t, err)
	_, err = f.store.Put(ctx, "reports/demand/monitor/20261201T101500Z.json", []byte(`{"requests":500}`), objstore.PutOptions{})
	require.NoError(t, err)
	alice := f.idp.token(t, "RS256", "alice", nil)
	victor := f.idp.token(t, "RS256", "victor", nil)
	erin := f.idp.token(t, "EdDSA", "erin", []string{"ml-platform"})
	for _, c := range []struct {
		path, token string
		code        int
	}{
		{"/v1/audit?model=demand", alice, 200},
		{"/v1/audit?model=returns", alice, 403},
		{"/v1/audit", alice, 403},
		{"/v1/audit", erin, 200},
		{"/v1/audit?model=demand", victor, 403},
		{"/v1/audit?model=demand", "", 401},
		{"/v1/audit?model=demand&since=forever", alice, 400},
		{"/v1/models/demand/status?run=run-1", alice, 200},
		{"/v1/models/returns/status", alice, 403},
		{"/v1/models/demand/monitor", alice, 200},
		{"/v1/models/returns/monitor", alice, 403},
		{"/v1/models/demand/reports/run-1/drift.json", alice, 200},
		{"/v1/models/returns/reports/run-9/drift.json", alice, 403},
		{"/v1/models/demand/reports/run-1/..%2F..%2Fspec.json", alice, 400},
		{"/v1/models/demand/reports/run-2/drift.json", alice, 404},
		{"/v1/models/demand/reports/monitor/20261201T101500Z.json", alice, 200},
		{"/v1/models/demand/versions/0", alice, 200},
		{"/v1/models/demand/versions/2", alice, 200},
		{"/v1/models/demand/versions/9", alice, 404},
		{"/v1/models/returns/versions/1", alice, 403},
	} {
		code, out := f.call(t, "GET", c.path, c.token, "")
		require.Equal(t, c.code, code, "%s: %v", c.path, out)
	}
	code, out := f.call(t, "GET", "/v1/models/demand/status?run=run-1", alice, "")
	require.Equal(t, 200, code)
	require.Equal(t, "run run-1", out["reason"])
	code, out = f.call(t, "GET", "/v1/models/demand/reports/run-1/drift.json", alice, "")
	require.Equal(t, 200, code)
	require.Equal(t, true, out["drifted"])
	code, out = f.call(t, "GET", "/v1/models/demand/versions/0", alice, "")
	require.Equal(t, 200, code)
	require.EqualValues(t, 1, out["version"].(map[string]any)["version"], "0: the production version")
}

// Request bodies share one budget: over it a call is refused with 503 before it is read.
func TestAPIBodiesShareABudget(t *testing.T) {
	f := newFixture(t)
	f.server.BodyBudget = 100
	srv := httptest.NewServer(f.server.Handler())
	defer srv.Close()
	erin := f.idp.token(t, "EdDSA", "erin", []string{"ml-platform"})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/models/demand/rollback", strings.NewReader(`{"reason":"`+strings.Repeat("r", 200)+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+erin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
}

// A feature service's vector through the API: the applied definitions over the model's
// dataset as of a time, for a caller with view on the model; nobody else.
func TestFeatureVectorsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = 2, 2, 10
	_, _, err := dataset.WriteRetail(ctx, f.store, "retail_demand", cfg)
	require.NoError(t, err)
	defs, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	b, _ := json.Marshal(FeaturesRequest{Definitions: string(defs), Model: "demand", Reason: "history"})
	code, out := f.call(t, "PUT", "/v1/features/retail", f.idp.token(t, "ES256", "dave", nil), string(b))
	require.Equal(t, 200, code, out)
	path := "/v1/features/retail/services/demand_forecast?model=demand&key=1%7C1&at=2026-09-08T00:00:00Z"
	code, out = f.call(t, "GET", path, f.idp.token(t, "RS256", "alice", nil), "")
	require.Equal(t, 200, code, out)
	require.NotEmpty(t, out["names"])
	require.Len(t, out["values"], len(out["names"].([]any)))
	code, _ = f.call(t, "GET", path, f.idp.token(t, "RS256", "victor", nil), "")
	require.Equal(t, 403, code, "no role on demand")
	code, _ = f.call(t, "GET", strings.Replace(path, "model=demand", "model=returns", 1), f.idp.token(t, "RS256", "alice", nil), "")
	require.Equal(t, 403, code, "alice may not view returns")
	code, _ = f.call(t, "GET", strings.Replace(path, "at=2026-09-08T00:00:00Z", "at=soon", 1), f.idp.token(t, "RS256", "alice", nil), "")
	require.Equal(t, 400, code)
}

// A model's deployment and versions through the API (`driftline models` with a token).
func TestModelVersionsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	code, out := f.call(t, "GET", "/v1/models/demand", f.idp.token(t, "RS256", "alice", nil), "")
	require.Equal(t, 200, code, out)
	require.EqualValues(t, 1, out["deployment"].(map[string]any)["production"])
	require.Len(t, out["versions"], 2)
	code, _ = f.call(t, "GET", "/v1/models/demand", f.idp.token(t, "RS256", "victor", nil), "")
	require.Equal(t, 403, code, "no role on demand")
	code, _ = f.call(t, "GET", "/v1/models/demand", "", "")
	require.Equal(t, 401, code)
}

// The online store's vector through the API (?source=online): as serving would read it now,
// for a caller with view on the model, of the model group's repository only.
func TestOnlineFeatureVectorsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	defs, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	b, _ := json.Marshal(FeaturesRequest{Definitions: string(defs), Model: "demand", Reason: "history"})
	code, out := f.call(t, "PUT", "/v1/features/retail", f.idp.token(t, "ES256", "dave", nil), string(b))
	require.Equal(t, 200, code, out)
	path := "/v1/features/retail/services/demand_forecast?model=demand&key=1%7C1&source=online"
	alice := f.idp.token(t, "RS256", "alice", nil)
	code, out = f.call(t, "GET", path, alice, "")
	require.Equal(t, 400, code, "no online store configured")
	require.Contains(t, out["error"], "--online-store")

	online, err := features.OpenStore(ctx, "bolt:"+filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, err)
	defer online.Close()
	f.server.Online = online
	_, repo, _, _, err := features.Current(ctx, f.store, "retail")
	require.NoError(t, err)
	now := time.Now()
	for _, v := range repo.Views {
		vals := make([]float64, len(v.Features))
		for i := range vals {
			vals[i] = float64(i + 1)
		}
		require.NoError(t, online.Put(ctx, v.Name, []features.FeatureRow{{Key: "1|1", Event: now.Add(-time.Minute).UnixMicro(), Created: now.UnixMicro(), Values: vals}}))
	}
	code, out = f.call(t, "GET", path, alice, "")
	require.Equal(t, 200, code, out)
	require.Equal(t, "online", out["source"])
	require.NotEmpty(t, out["names"])
	for i, v := range out["values"].([]any) {
		require.NotNil(t, v, "feature %v", out["names"].([]any)[i])
	}
	code, out = f.call(t, "GET", strings.Replace(path, "key=1%7C1", "key=9%7C9", 1), alice, "")
	require.Equal(t, 200, code, out)
	require.Equal(t, "no value", out["missing"].([]any)[0])
	require.Nil(t, out["values"].([]any)[0])
	code, _ = f.call(t, "GET", path, f.idp.token(t, "RS256", "victor", nil), "")
	require.Equal(t, 403, code, "no role on demand")
	code, _ = f.call(t, "GET", strings.Replace(path, "source=online", "source=elsewhere", 1), alice, "")
	require.Equal(t, 400, code)
}
