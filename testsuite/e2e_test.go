package testsuite

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/console"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/examples/externaltrainer"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/dashboards"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/internal/telemetry"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
	"github.com/driftline/driftline/worker"
)

// approvalReason is what alice writes; with the payload codec it never appears in history.
const approvalReason = "evidence reviewed: MAE within bounds, drift explained by the season"

type e2e struct {
	t         *testing.T
	ctx       context.Context
	c         client.Client
	forger    client.Client // a Temporal client of its own identity (mallory@laptop)
	store     interface{ URI(string) string }
	bucket    objstore.Bucket
	serving   string
	approvals string
	secret    []byte
	badTokens bool // try the refused tokens at the first approval
	// lastAttestation is the attestation the previous run was approved with; the next run must
	// refuse it (replay). breakGlass approves the next run directly through Temporal.
	lastAttestation string
	lastRunID       string          // the last run of a partitioned window
	recorded        map[string]bool // recordHistory's names
	plain           client.Client   // recordHistory's client: payloads decoded
	breakGlass      bool
}

// decide posts to the control-plane API's approvals endpoint and returns the HTTP status.
func (e *e2e) decide(token string, version int) int {
	e.t.Helper()
	c := &api.Client{BaseURL: e.approvals, Token: token}
	_, err := c.Decide(e.ctx, "demand", api.ApprovalRequest{Version: version, Decision: "approve", Reason: approvalReason})
	return statusOf(e.t, err)
}

// statusOf is the HTTP status of the API's answer: 200, or the refusal's.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return http.StatusOK
	}
	code := api.StatusOf(err)
	require.NotZero(t, code, "not an answer of the API: %v", err)
	return code
}

func (e *e2e) token(sub string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := api.MintDev(e.secret, sub, nil, ttl)
	require.NoError(e.t, err)
	return tok
}

// recordHistory writes a closed workflow's history to DIR/<name>.json when
// DRIFTLINE_RECORD_HISTORIES=DIR (the replay fixtures of workflows/testdata,
// docs/testing.md), waiting for it to close; only the first workflow named so is kept.
func (e *e2e) recordHistory(workflowID, runID, name string) {
	dir := os.Getenv("DRIFTLINE_RECORD_HISTORIES")
	if dir == "" || e.recorded[name] {
		return
	}
	if e.recorded == nil {
		e.recorded = map[string]bool{}
	}
	e.recorded[name] = true
	writeHistory(e.t, e.ctx, e.plain, workflowID, runID, filepath.Join(dir, name+".json"))
}

// writeHistory waits for a workflow to close and writes its history to path as the replay
// fixtures hold it.
func writeHistory(t *testing.T, ctx context.Context, c client.Client, workflowID, runID, path string) {
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, workflowID, runID)
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}, time.Minute, 100*time.Millisecond, "%s closes", workflowID)
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, raw, 0o644))
}

// call sends a JSON request to the control-plane API with a token of sub; the status and the
// decoded answer.
func (e *e2e) call(method, path, sub string, body any) (int, map[string]any) {
	e.t.Helper()
	c := &api.Client{BaseURL: e.approvals}
	if sub != "" {
		tok, err := api.MintDev(e.secret, sub, map[string][]string{"erin": {"ml-platform"}}[sub], time.Hour) // erin: an admin
		require.NoError(e.t, err)
		c.Token = tok
	}
	var raw json.RawMessage
	err := c.Do(e.ctx, method, path, body, &raw)
	out := map[string]any{}
	var ae *api.Error
	if errors.As(err, &ae) {
		out["error"] = ae.Message
	} else if err == nil {
		_ = json.Unmarshal(raw, &out)
	}
	return statusOf(e.t, err), out
}

// applySpec registers the spec through the API: as dave (a data scientist) when no governed
// field changes, as grace (governance) when one does.
func (e *e2e) applySpec(sp spec.Spec) {
	e.t.Helper()
	raw, err := yaml.Marshal(sp)
	require.NoError(e.t, err)
	who := "grace"
	if cur, _, _, err := registry.New(e.bucket).CurrentSpec(e.ctx, sp.Model); err == nil && len(spec.GovernanceChanges(&cur, sp)) == 0 {
		who = "dave"
	}
	code, out := e.call(http.MethodPut, "/v1/models/"+sp.Model+"/spec", who, api.SpecRequest{Spec: string(raw), Reason: "e2e: the next phase's spec"})
	require.Equal(e.t, http.StatusOK, code, "%s applies the spec: %v", who, out)
}

// run registers the run's spec, starts the run through the API as dave, approves it as
// alice when policy asks, and waits for the outcome.
func (e *e2e) run(in pipeline.RunInput) (pipeline.RunResult, pipeline.Status, error) {
	e.t.Helper()
	e.applySpec(in.Spec)
	var runID string
	ignored := false // a forged approval signal was sent (and ignored)
	for range 50 {   // the search attributes may take a moment to be visible after setup
		code, out := e.call(http.MethodPost, "/v1/runs", "dave", api.RunRequest{Model: in.Spec.Model, From: in.From, To: in.To, Force: in.Force})
		if code == http.StatusOK {
			runID, _ = out["run_id"].(string)
			break
		}
		require.Contains(e.t, fmt.Sprint(out["error"]), "search attribute", "start the run: %d %v", code, out)
		time.Sleep(200 * time.Millisecond)
	}
	require.NotEmpty(e.t, runID)
	run := e.c.GetWorkflow(e.ctx, pipeline.WorkflowID(in.Spec.Model), runID)
	var err error
	res, err := starter.Follow(e.ctx, e.c, in.Spec.Model, run, io.Discard, func(st pipeline.Status) {
		if e.badTokens {
			e.badTokens = false
			require.Equal(e.t, http.StatusUnauthorized, e.decide("", st.CandidateVersion), "missing token")
			require.Equal(e.t, http.StatusUnauthorized, e.decide(e.token("alice", -time.Minute), st.CandidateVersion), "expired token")
			forged, _ := api.MintDev([]byte("not-the-key-not-the-key-not-the-key"), "alice", nil, time.Hour)
			require.Equal(e.t, http.StatusUnauthorized, e.decide(forged, st.CandidateVersion), "forged token")
			require.Equal(e.t, http.StatusForbidden, e.decide(e.token("dave", time.Hour), st.CandidateVersion), "a data scientist may not approve")
			require.Equal(e.t, http.StatusConflict, e.decide(e.token("alice", time.Hour), st.CandidateVersion+7), "the run refuses a wrong version")
		}
		// The attestation an earlier run was approved with is refused by this run (replay).
		if e.lastAttestation != "" {
			_, err := starter.Decide(e.ctx, e.c, in.Spec.Model, true, pipeline.Approval{Approver: "alice", Reason: "replayed",
				Version: st.CandidateVersion, Attestation: e.lastAttestation})
			require.ErrorContains(e.t, err, "attestation refused", "an old attestation sent again")
		}
		// A forged Update straight to Temporal, claiming alice: refused without attestation.
		_, err := starter.Decide(e.ctx, e.forger, in.Spec.Model, true, pipeline.Approval{Approver: "alice", Reason: "I am not really alice", Version: st.CandidateVersion})
		if e.breakGlass { // the spec allows break-glass: accepted, recorded as such
			require.NoError(e.t, err)
			return
		}
		require.ErrorContains(e.t, err, "an attested decision is required", "a forged approval through the Temporal client")
		// It never reaches history; the worker's connection audits it under the sender's
		// Temporal identity, the claimed approver only a detail.
		require.Eventually(e.t, func() bool {
			recs, err := audit.Log{Store: e.bucket}.List(e.ctx, in.Spec.Model, time.Now().Add(-time.Hour))
			require.NoError(e.t, err)
			for _, r := range recs {
				if r.Action == "update_refused" && r.RunID == run.GetRunID() && r.Details["attested"] == false {
					require.Equal(e.t, "temporal:mallory@laptop", r.Actor)
					require.Equal(e.t, "alice", r.Details["claimed_approver"])
					require.Equal(e.t, st.CandidateVersion, r.Version)
					require.Contains(e.t, r.Reason, "an attested decision is required")
					return true
				}
			}
			return false
		}, 30*time.Second, 200*time.Millisecond, "the refused Update is audited")
		// The same forgery as a signal (the older way in): ignored, counted and audited.
		require.NoError(e.t, e.c.SignalWorkflow(e.ctx, pipeline.WorkflowID(in.Spec.Model), run.GetRunID(), pipeline.SignalApproval,
			pipeline.ApprovalSignal{Approve: true, Approval: pipeline.Approval{Approver: "alice", Reason: "a signal claiming alice", Version: st.CandidateVersion}}))
		require.Eventually(e.t, func() bool {
			now, err := starter.Status(e.ctx, e.c, in.Spec.Model, run.GetRunID())
			return err == nil && now.IgnoredSignals > st.IgnoredSignals
		}, 30*time.Second, 100*time.Millisecond, "the forged signal is ignored")
		ignored = true
		require.Equal(e.t, http.StatusOK, e.decide(e.token("alice", time.Hour), st.CandidateVersion))
	})
	if ignored {
		e.recordHistory(pipeline.WorkflowID(in.Spec.Model), run.GetRunID(), "attested_ignored_signal")
	}
	if in.Spec.Dataset.PartitionFiles > 0 {
		e.recordHistory(pipeline.WorkflowID(in.Spec.Model), run.GetRunID(), "partitioned_pass")
		e.lastRunID = run.GetRunID()
	}
	if res.Version > 0 {
		raw, _, rerr := objstore.ReadAll(e.ctx, e.bucket, registry.RecordKey(in.Spec.Model, res.Version, "approvals", run.GetRunID()))
		if rerr == nil {
			var rec pipeline.ApprovalRecord
			require.NoError(e.t, json.Unmarshal(raw, &rec))
			e.lastAttestation = rec.Attestation
		}
	}
	st, qerr := starter.Status(e.ctx, e.c, in.Spec.Model, run.GetRunID())
	require.NoError(e.t, qerr)
	return res, st, err
}

func (e *e2e) servingVersion(want int) {
	e.t.Helper()
	hc := httptest.NewServer(nil).Client()
	req := traffic.FromRetail(dataset.DefaultRetail().RetailDay(40)[0])
	var last traffic.Response
	var err error
	for range 100 {
		last, err = traffic.Predict(e.ctx, hc, e.serving, "demand", req)
		if err == nil && last.Version == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("serving never answered with v%d: last %+v, %v", want, last, err)
}

// withFeature returns a copy of the spec that also uses a column as a feature (adding it to
// the contract when the contract does not know it).
func withFeature(sp spec.Spec, name string) spec.Spec {
	out := sp
	out.Features = append(append([]string(nil), sp.Features...), name)
	out.Contract.Columns = nil
	found := false
	for _, c := range sp.Contract.Columns {
		if c.Name == name {
			c.Role, found = contract.RoleFeature, true
		}
		out.Contract.Columns = append(out.Contract.Columns, c)
	}
	if !found {
		out.Contract.Columns = append(out.Contract.Columns, contract.Column{Name: name, Type: contract.TypeDouble, Role: contract.RoleFeature})
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	stk := stack.New(t, stack.DevServer, "driftline-e2e")
	hostPort, store := stk.TemporalAddr, stk.Store
	// Each run links back to the console from the Temporal UI (its static details).
	t.Setenv("DRIFTLINE_CONSOLE_URL", "http://console.e2e:8091")
	// Every payload the clients and workers write is encrypted (the payload codec).
	pk := make([]byte, 32)
	_, _ = rand.Read(pk)
	payloadCodec, err := codec.New("e2e", pk)
	require.NoError(t, err)

	// Traces: every span of this process (the clients, the pipeline worker, serving) goes to a
	// real Jaeger over OTLP, checked at the end (jaegerPhase).
	otlp, jaegerQuery := stack.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
	prevTP := otel.GetTracerProvider()
	flushTraces, err := telemetry.Init(ctx, "driftline-e2e")
	require.NoError(t, err)
	t.Cleanup(func() { otel.SetTracerProvider(prevTP) })
	tracing, err := config.TracingInterceptors()
	require.NoError(t, err)

	// The worker's connection audits the Updates its workflows refuse (worker.UpdateAudit).
	refused := worker.NewUpdateAudit(audit.Log{Store: store})
	opts := client.Options{DataConverter: codec.DataConverter(payloadCodec), Interceptors: tracing}
	refused.Configure(&opts)
	c := stk.Dial(ctx, opts)

	metrics := prometheus.NewRegistry()
	rbac, err := policies.LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	_, seed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	attester := api.NewAttester(seed)
	labelKey := []byte("e2e-label-key-e2e-label-key-e2e-label-key")
	p, err := worker.New(ctx, c, worker.Options{Store: store, Registry: metrics, RBAC: rbac, LabelKey: labelKey, UpdateAudit: refused,
		AttestationKeys: func(context.Context) ([]pipeline.AttestationKey, error) {
			return []pipeline.AttestationKey{attester.Key()}, nil
		}})
	require.NoError(t, err)
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	go func() { _ = p.Run(wctx) }()

	srv, err := serving.New(serving.Options{Tracing: true, Store: store, Models: []string{"demand"}, Poll: 200 * time.Millisecond, LogFlush: 300 * time.Millisecond,
		LabelKey: labelKey})
	require.NoError(t, err)
	srv.Start(wctx)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()

	cfg := dataset.DefaultRetail()
	_, _, err = dataset.WriteRetail(ctx, store, "retail_demand", cfg)
	require.NoError(t, err)

	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Canary.Bake.Duration = 6 * time.Second
	sp.Canary.MinRequest = 15
	sp.Canary.MaxBakes = 4
	sp.Canary.MinLabels = 300 // paired labels: a few bakes of the traffic below
	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	secret := []byte("e2e-secret-e2e-secret-e2e-secret-e2e")
	apiServer := &api.Server{Verifier: api.DevHS256{Secret: secret}, Engine: engine, Audit: audit.Log{Store: store},
		Runs: api.TemporalRuns{Client: c}, Registry: registry.New(store), Attester: attester}
	as := httptest.NewServer(apiServer.Handler())
	defer as.Close()
	// Another Temporal client, as an insider with access to Temporal would hold one.
	forger, err := client.Dial(client.Options{HostPort: hostPort, DataConverter: codec.DataConverter(payloadCodec), Identity: "mallory@laptop"})
	require.NoError(t, err)
	defer forger.Close()
	e := &e2e{t: t, ctx: ctx, c: c, forger: forger, store: store, bucket: store, serving: hs.URL, approvals: as.URL, secret: secret, badTokens: true}
	if os.Getenv("DRIFTLINE_RECORD_HISTORIES") != "" {
		// Histories as the codec decodes them (the Temporal CLI's --codec-endpoint): a replay
		// fixture holds plain payloads.
		decode, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{Codecs: []converter.PayloadCodec{payloadCodec}})
		require.NoError(t, err)
		e.plain, err = client.Dial(client.Options{HostPort: hostPort, ConnectionOptions: client.ConnectionOptions{
			DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(decode)}}})
		require.NoError(t, err)
		defer e.plain.Close()
	}

	// Phase 1: the first run trains v1 and promotes it without a canary.
	res, st, err := e.run(pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28"})
	require.NoError(t, err)
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	require.Equal(t, 1, res.Version)
	require.Equal(t, "alice", st.Approval.Approver)
	require.Positive(t, st.Validation.RowsQuarantined, "the demo data's NaN rows are quarantined")
	require.Equal(t, st.Validation.RowsRead, st.Validation.RowsAccepted+st.Validation.RowsQuarantined)
	e.servingVersion(1)
	// The run's raw history holds no plaintext approval reason (nor spec): payloads are sealed.
	encrypted := 0
	it := c.GetWorkflowHistory(ctx, pipeline.WorkflowID("demand"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		raw, err := proto.Marshal(ev)
		require.NoError(t, err)
		require.NotContains(t, string(raw), approvalReason, "event %d (%s) carries the approval reason in plaintext", ev.GetEventId(), ev.GetEventType())
		require.NotContains(t, string(raw), "units_sold", "event %d carries the spec in plaintext", ev.GetEventId())
		if strings.Contains(string(raw), codec.Encoding) {
			encrypted++
		}
	}
	require.Positive(t, encrypted, "payloads carry the codec's encoding")
	require.Equal(t, approvalReason, st.Approval.Reason, "clients with the key read it back")

	// Live client traffic from the holiday season, as the canary needs.
	rows := cfg.Requests(7) // a week of store-item rows
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var ts traffic.Stats
	go traffic.Run(tctx, hs.URL, "demand", rows, 150, &ts) // a p99 needs 299 candidate requests per step

	// Phase 2: the holiday window drifts; v2 is retrained, canaried on live traffic, promoted.
	// Its spec turns approval off: a data scientist may not (a governed field), a governance
	// officer may, and the run still waits for an approver, the organisation's floor for a
	// model in production.
	noApproval := sp
	noApproval.Approval.Required = false
	noApproval.Dataset.PartitionFiles = 4 // the window's 28 day files read as 7 partitions, merged; the holdout's 7 days in the last 2
	raw, err := yaml.Marshal(noApproval)
	require.NoError(t, err)
	code, out := e.call(http.MethodPut, "/v1/models/demand/spec", "dave", api.SpecRequest{Spec: string(raw), Reason: "approvals slow us down"})
	require.Equal(t, http.StatusForbidden, code, out)
	require.Contains(t, out["error"], "may not change_governance on model demand")
	// During its canary one client sends one extreme label (10,000 units, within the contract's
	// range): the decision does not flip.
	extreme := make(chan error, 1)
	go func() { extreme <- e.extremeLabelDuringCanary(rows[0]) }()
	res, st, err = e.run(pipeline.RunInput{Spec: noApproval, From: "2026-10-03", To: "2026-10-30"})
	require.NoError(t, err)
	require.NoError(t, <-extreme, "the extreme label was taken during the canary")
	require.True(t, st.Policy.ApprovalRequired, "the organisation's floor requires an approver")
	require.Equal(t, "dave", st.Policy.Requester, "the requester, attested by the API")
	require.Equal(t, "alice", st.Approval.Approver)
	require.True(t, st.Drift.Drifted, st.Drift.Why)
	require.Equal(t, 1, st.Drift.ReferenceVersion)
	summaries, err := store.List(ctx, keys.Report("demand", e.lastRunID, "partitions/"))
	require.NoError(t, err)
	require.Len(t, summaries, 7, "the one pass ran as 7 partitions, their summaries in the bucket")
	evals, err := store.List(ctx, keys.Report("demand", e.lastRunID, "evaluation/parts/"))
	require.NoError(t, err)
	require.Len(t, evals, 2, "the holdout was evaluated as the 2 partitions holding its days")
	require.Less(t, st.Evaluation.CandidateMAE, st.Evaluation.ChampionMAE, "the retrained model beats v1 on the new regime")
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	require.Equal(t, 2, res.Version)
	require.NotEmpty(t, st.Canary)
	last := st.Canary[len(st.Canary)-1]
	require.GreaterOrEqual(t, last.Candidate.Requests, sp.Canary.MinRequest)
	require.Zero(t, last.Candidate.Errors)
	require.Equal(t, 3, last.Step, "the canary ramped through its three steps")
	require.Equal(t, 0.5, last.Share)
	require.True(t, last.MAE.Decided, "feedback labels arrived and decided the live MAE: %+v", last.MAE)
	require.Less(t, last.MAE.Candidate, last.MAE.Production, "v2 is better than v1 on live labelled traffic")
	require.GreaterOrEqual(t, last.MAE.Pairs, sp.Canary.MinLabels, "both models answered the same labelled requests")
	require.GreaterOrEqual(t, last.Candidate.Requests, last.Candidate.P99Samples, "the p99 was judged on enough requests")
	require.NotNil(t, last.DisparateImpactDelta, "disparate impact compared on the same requests with an interval")
	require.NotNil(t, last.Fairness, "live disparate impact by region")
	require.NotNil(t, last.PredictionDrift, "the canary evidence compares live outputs with the holdout outputs")
	require.Positive(t, last.PredictionDrift.Answers)
	e.servingVersion(2)

	// Phase 3: a bad candidate needs competitor_price, which online clients do not send. It
	// passes offline evaluation, fails live, and is rolled back; v2 keeps serving.
	// Its spec allows break-glass: the approval goes straight to Temporal, without the API, and
	// is recorded as break-glass under the Temporal client's identity.
	bad := withFeature(sp, "competitor_price")
	bad.Evaluation.MaxRegression = 0.05
	bad.Approval.BreakGlass = true
	e.breakGlass = true
	res, st, err = e.run(pipeline.RunInput{Spec: bad, From: "2026-10-03", To: "2026-10-30", Force: true})
	e.breakGlass = false
	require.NoError(t, err)
	require.Equal(t, "break-glass", st.Approval.Approver)
	bgRecs, err := audit.Log{Store: store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var breakGlass []audit.Record
	for _, r := range bgRecs {
		if r.Action == "approval_break_glass" {
			breakGlass = append(breakGlass, r)
		}
	}
	require.Len(t, breakGlass, 1, "the break-glass approval is audited as such")
	require.True(t, strings.HasPrefix(breakGlass[0].Actor, "break-glass:"), breakGlass[0].Actor)
	require.NotContains(t, breakGlass[0].Actor, "alice", "never under the claimed approver")
	require.NotEqual(t, "break-glass:unknown", breakGlass[0].Actor, "the Temporal client identity is read from the run's history")
	require.Equal(t, pipeline.OutcomeRolledBack, res.Outcome, res.Reason)
	require.Equal(t, 3, res.Version)
	require.Contains(t, res.Reason, "error rate")
	require.Contains(t, res.Reason, "step 1 at 10%", "rolled back at the first step")
	require.Positive(t, st.Canary[len(st.Canary)-1].Candidate.Errors)
	dep, _, err := registry.New(store).Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 2, dep.Production)
	require.Zero(t, dep.Canary)
	e.servingVersion(2)
	stopTraffic()
	sent, failed, fallbacks, _ := ts.Snapshot()
	require.Positive(t, sent)
	require.Zero(t, failed, "no client request failed through promotions and the rollback")
	require.Positive(t, fallbacks, "the bad candidate's requests were answered by production")

	// Phase 4: bad input ends the run as failed_validation, naming the column.
	broken := withFeature(sp, "no_such_column")
	_, st, err = e.run(pipeline.RunInput{Spec: broken, From: "2026-10-03", To: "2026-10-30", Force: true})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, pipeline.OutcomeFailedValidation, st.Outcome)
	require.Contains(t, st.Reason, "no_such_column")
	require.Contains(t, st.Reason, "datasets/retail_demand/dt=2026-10-03/part-0000.parquet")

	// Operators find runs by outcome in visibility (search attributes).
	require.Eventually(t, func() bool {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: `DriftlineModel = "demand" AND DriftlineOutcome = "promoted"`})
		return err == nil && resp.GetCount() == 2
	}, 30*time.Second, 200*time.Millisecond)

	// Every call to the API, allowed or refused, and every decision a run took, is in the audit
	// trail (refused requests never reach Temporal history).
	// Calls with no verified identity are counted in one record a minute, not a record each.
	require.NoError(t, apiServer.FlushRefusals(ctx))
	recs, err := audit.Log{Store: store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	actions := map[string]int{}
	for _, r := range recs {
		actions[r.Action]++
	}
	anon, err := audit.Log{Store: store}.List(ctx, "", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	for _, r := range anon {
		if r.Action == "refused_anonymous" {
			raw, _ := json.Marshal(r.Details["counts"])
			var lines []api.RefusalCount
			require.NoError(t, json.Unmarshal(raw, &lines))
			for _, l := range lines {
				actions[l.Action] += l.Count
			}
		}
	}
	require.Equal(t, 3, actions["approve_unauthenticated"], "%v", actions)
	require.Equal(t, 1, actions["approve_forbidden"])
	require.Equal(t, 1, actions["approve_failed"], "the wrong version, refused by the API")
	require.Equal(t, 2, actions["approve"], "each call the API allowed, audited by the API")
	require.Equal(t, 2, actions["approval"], "each attested approval the runs took, once")
	require.Equal(t, 1, actions["approval_break_glass"])

	// The pipeline worker's metrics saw the runs and timed every step.
	families, err := metrics.Gather()
	require.NoError(t, err)
	seen := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "driftline_pipeline_runs_total":
				seen["runs/"+labels["outcome"]] = m.GetCounter().GetValue()
			case "driftline_pipeline_step_duration_seconds":
				seen["step/"+labels["step"]+"/"+labels["result"]] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, 2.0, seen["runs/promoted"])
	require.Equal(t, 1.0, seen["runs/rolled_back"])
	require.Equal(t, 1.0, seen["runs/failed_validation"])
	require.Equal(t, 3.0, seen["step/Train/ok"])
	require.Equal(t, 1.0, seen["step/Inspect/error"], "the failed validation is the one pass over the window")

	// Phase 5: the train step runs in an external trainer on its own task queue (the example
	// trainer: ridge, written against the documented contract); its artifact is adopted,
	// evaluated and registered with the trainer named; a threshold no model meets makes the
	// policy refuse it (traffic has stopped: no canary to run).
	ext := sdkworker.New(c, "e2e-external", sdkworker.Options{})
	ext.RegisterActivityWithOptions((&externaltrainer.Trainer{Store: store, Alpha: 1}).Train,
		activity.RegisterOptions{Name: pipeline.ExternalTrainActivity})
	require.NoError(t, ext.Start())
	defer ext.Stop()
	viaQueue := sp
	viaQueue.Trainer.TaskQueue = "e2e-external"
	viaQueue.Evaluation.MaxMAE = 0.01
	res, st, err = e.run(pipeline.RunInput{Spec: viaQueue, From: "2026-10-03", To: "2026-10-30", Force: true})
	require.NoError(t, err)
	require.Equal(t, pipeline.OutcomeRejectedByPolicy, res.Outcome, res.Reason)
	require.Contains(t, res.Reason, "exceeds the threshold 0.01")
	require.Positive(t, st.Training.TrainRows)
	external, err := registry.New(store).LoadModel(ctx, "demand", st.CandidateVersion)
	require.NoError(t, err)
	require.Equal(t, "external:e2e-external", external.Trainer)
	require.Equal(t, "linear", external.Family)

	// A schedule fires the loop on a cron, skipping overlaps; one firing every second is refused.
	code, out = e.call(http.MethodPut, "/v1/models/demand/schedule", "dave", api.ScheduleRequest{Cron: "@every 1s"})
	require.Equal(t, http.StatusBadRequest, code, out)
	code, out = e.call(http.MethodPut, "/v1/models/demand/schedule", "dave", api.ScheduleRequest{Cron: "0 3 * * *"})
	require.Equal(t, http.StatusOK, code, out)
	id, _ := out["schedule_id"].(string)
	desc, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, desc.Schedule.Policy.Overlap)
	require.Len(t, desc.Schedule.Spec.Calendars, 1, "the server keeps the cron as a calendar spec")
	require.Equal(t, 3, desc.Schedule.Spec.Calendars[0].Hour[0].Start)
	code, out = e.call(http.MethodPut, "/v1/models/demand/schedule", "dave", api.ScheduleRequest{Cron: "0 4 * * *"})
	require.Equal(t, http.StatusOK, code, "creating it again replaces it: %v", out)
	var scheduled pipeline.RunInput
	desc, err = c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	require.NoError(t, err)
	action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.NoError(t, c.ScheduleClient().GetHandle(ctx, id).Delete(ctx))
	require.Len(t, action.Args, 1)
	payload, ok := action.Args[0].(*commonpb.Payload)
	require.True(t, ok, "%T", action.Args[0])
	require.NoError(t, codec.DataConverter(payloadCodec).FromPayload(payload, &scheduled))
	_, err = pipeline.VerifyOrigin(scheduled.Origin, []pipeline.AttestationKey{attester.Key()}, "demand", time.Time{}, time.Now())
	require.NoError(t, err, "the schedule's runs carry the API's origin")

	// A planted audit key neither breaks the chain nor lets a mutation through unaudited: a
	// name that is not a model is refused before it becomes a key, and an object planted at
	// the chain's next position is skipped by the next (audited) change and named by verify.
	code, _ = e.call(http.MethodPost, "/v1/models/"+url.PathEscape("demand/000000000099.json")+"/rollback", "", api.PointerRequest{Reason: "x"})
	require.Equal(t, http.StatusBadRequest, code)
	alog := audit.Log{Store: store}
	reps, probs, err := alog.Verify(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, probs)
	var next string
	for _, r := range reps {
		if strings.HasSuffix(r.Chain, "/demand") {
			next = fmt.Sprintf("%s/%012d.json", r.Chain, r.LastSeq+1)
		}
	}
	require.NotEmpty(t, next)
	_, err = store.Put(ctx, next, []byte("planted"), objstore.PutOptions{IfNoneMatch: true})
	require.NoError(t, err)
	code, out = e.call(http.MethodPut, "/v1/models/demand/aliases/challenger", "erin", api.PointerRequest{Version: 1, Reason: "keep v1 at hand"})
	require.Equal(t, http.StatusOK, code, "an admin's change after the planted object: %v", out)
	recs, err = alog.List(ctx, "demand", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(recs, func(r audit.Record) bool {
		return r.Actor == "erin" && r.Action == "promote" && r.Decision == "allowed" && r.Details["alias"] == "challenger"
	}), "the change is audited")
	reps, probs, err = alog.Verify(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, probs, "the planted object is no break")
	var planted []string
	for _, r := range reps {
		planted = append(planted, r.Planted...)
	}
	require.Contains(t, planted, next, "verify names the planted object")

	// Phase 6: the monitor on live labelled traffic, watched by a real Prometheus (Debian's,
	// with deploy/prometheus/rules.yml, scraping the pipeline worker and serving) and a real
	// Alertmanager (deploy/alertmanager/alertmanager.yml, its Slack receiver pointed at this
	// test). v2 is degraded by a bar it cannot meet (max_live_mae 0.5; its live MAE is about
	// 1.7): ModelDegradation goes pending, then firing, reaches the channel, and the monitor
	// starts the retraining run.
	prom, promFrom, promEnd := e.prometheusPhase(sp, metrics, hs.URL, rows)

	// Phase 7: the traces in Jaeger.
	jaegerPhase(t, hs.URL, jaegerQuery, flushTraces)

	// Phase 8: the console over what the real runs and the monitor wrote.
	consolePhase(t, store, engine, secret, c, jaegerQuery)
	dashboardPhase(t, store, engine, secret, prom, promFrom, promEnd)
}

// consolePhase: the console lists every run the loop finished with its outcome, the run
// that registered production shows that version's holdout MAE as evaluated, and the
// monitoring page has the monitor's windows; alice (an approver of demand) may view them,
// a stranger may not.
func consolePhase(t *testing.T, store objstore.Bucket, engine *policies.Engine, secret []byte, c client.Client, jaeger string) {
	ctx := context.Background()
	reg := registry.New(store)
	h := (&console.Server{Store: store, Registry: reg, Verifier: api.DevHS256{Secret: secret}, Engine: engine,
		Live: consoleLive{c}, RunLink: func(m, run string) string { return starter.UILink("default", pipeline.WorkflowID(m), run) },
		Traces: console.Jaeger{URL: jaeger, Service: "driftline-e2e"}}).Handler()
	page := func(sub, path string) (int, string) {
		tok, err := api.MintDev(secret, sub, nil, time.Minute)
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	d, _, err := reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	v, err := reg.Version(ctx, "demand", d.Production)
	require.NoError(t, err)
	code, body := page("alice", "/models/demand")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, fmt.Sprintf(`<p class="big">v%d</p>`, d.Production))
	for _, outcome := range []string{"promoted", "rolled_back", "failed_validation", "rejected_by_policy"} {
		require.Contains(t, body, `<span class="outcome `+outcome+`">`, outcome)
	}
	code, body = page("alice", "/models/demand/runs/"+url.PathEscape(v.Lineage.RunID))
	require.Equal(t, http.StatusOK, code, body)
	var ev struct {
		CandidateMAE float64 `json:"candidate_mae"`
	}
	raw, _, err := objstore.ReadAll(ctx, store, "reports/demand/"+v.Lineage.RunID+"/evaluation.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &ev))
	require.Equal(t, v.Metrics["holdout_mae"], ev.CandidateMAE)
	require.Regexp(t, `id="candidate-mae">`+regexp.QuoteMeta(console.Num(ev.CandidateMAE))+`<`, body)
	require.Contains(t, body, `<span class="outcome promoted">promoted</span>`)
	require.Contains(t, body, "/workflows/"+url.PathEscape(pipeline.WorkflowID("demand"))+"/"+v.Lineage.RunID+"/history", "the link to the Temporal UI")
	v1, err := reg.Version(ctx, "demand", 1) // registered by a run the CLI's way started (StartRun)
	require.NoError(t, err)
	desc, err := c.DescribeWorkflow(ctx, pipeline.WorkflowID("demand"), v1.Lineage.RunID)
	require.NoError(t, err)
	details, err := desc.GetStaticDetails()
	require.NoError(t, err)
	require.Equal(t, "[demand in the Driftline console](http://console.e2e:8091/models/demand): versions, runs, lineage, monitoring", details,
		"the Temporal UI links the run back to the console")
	// The run's trace, from Jaeger: the workflow and its steps as one waterfall.
	code, body = page("alice", "/models/demand/runs/"+url.PathEscape(v.Lineage.RunID)+"/trace")
	require.Equal(t, http.StatusOK, code, body)
	if path := os.Getenv("DRIFTLINE_RECORD_TRACE"); path != "" { // console/testdata (docs/testing.md)
		resp, err := http.Get(jaeger + "/api/traces?service=driftline-e2e&limit=5&tags=" + url.QueryEscape(`{"temporalRunID":"`+v.Lineage.RunID+`"}`))
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, raw, 0o644))
	}
	// (v2's run read its window as partitions: its holdout evaluated as two, then merged.)
	for _, span := range []string{">RunWorkflow:ContinuousTraining<", ">RunActivity:Train<", ">RunActivity:EvaluatePartition<", ">RunActivity:MergeEvaluations<", ">RunActivity:Register<"} {
		require.Contains(t, body, span, "the trace page of run %s", v.Lineage.RunID)
	}
	code, body = page("alice", "/models/demand/monitor")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "<h2>Windows</h2>")
	code, _ = page("mallory", "/models/demand")
	require.Equal(t, http.StatusForbidden, code)
}

type consoleLive struct{ c client.Client }

func (l consoleLive) Status(ctx context.Context, model, runID string) (pipeline.Status, error) {
	return starter.Status(ctx, l.c, model, runID)
}

// jaegerTraces asks Jaeger's query API, read by the console's parser of its answers.
func jaegerTraces(t *testing.T, url string) []console.Trace {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	traces, err := console.ParseJaeger(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil // not there yet ("trace not found")
	}
	require.NoError(t, err)
	return traces
}

// jaegerPhase: a prediction with the client's traceparent is in Jaeger under that trace, its
// serving span a child of the client's span; each loop run is one trace in which every
// activity's run descends from the run's one workflow span (the status queries the test made
// all along, and the replays, added none); in the trace of a run the monitor started, the
// monitor's own steps descend from the monitor's span.
func jaegerPhase(t *testing.T, servingURL, jaeger string, flush func(context.Context) error) {
	const traceID, parent = "5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, servingURL+"/v1/models/demand:predict",
		strings.NewReader(`{"request_id": "traced", "features": {"price": 9.5, "promo": 1, "weekday": 5, "temperature": 6.5, "item_popularity": 2.1}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, traceID, resp.Header.Get("X-Trace-Id"))
	require.NoError(t, flush(context.Background()))

	var pred []console.Trace
	require.Eventually(t, func() bool {
		pred = jaegerTraces(t, jaeger+"/api/traces/"+traceID)
		return len(pred) == 1
	}, 30*time.Second, 200*time.Millisecond, "the prediction's trace in Jaeger")
	served := false
	for _, sp := range pred[0].Spans {
		if sp.Name == "serving POST /v1/models/demand:predict" {
			served = true
			require.Equal(t, parent, sp.Parent, "the serving span is a child of the client's")
		}
	}
	require.True(t, served)

	runs := jaegerTraces(t, jaeger+"/api/traces?service=driftline-e2e&operation="+url.QueryEscape("RunWorkflow:ContinuousTraining")+"&limit=50&lookback=1h")
	require.NotEmpty(t, runs, "the loop's runs in Jaeger")
	checked, most := 0, 0
	for _, tr := range runs {
		parentOf := map[string]string{}
		name := map[string]string{}
		var workflows []string
		for _, sp := range tr.Spans {
			name[sp.ID] = sp.Name
			if sp.Parent != "" {
				parentOf[sp.ID] = sp.Parent
			}
			if sp.Name == "RunWorkflow:ContinuousTraining" {
				workflows = append(workflows, sp.ID)
			}
		}
		if len(workflows) == 0 {
			continue
		}
		require.Len(t, workflows, 1, "trace %s: one workflow span per run, however often it was replayed or queried", tr.ID)
		activities := 0
		for id, n := range name {
			if !strings.HasPrefix(n, "RunActivity:") {
				continue
			}
			activities++
			// Its ancestors hold the run's workflow span, or, for the monitor's own steps in
			// the trace of a run the monitor started, the monitor's.
			underRun, underMonitor := false, false
			for at, hops := parentOf[id], 0; at != "" && hops < 20; at, hops = parentOf[at], hops+1 {
				underRun = underRun || at == workflows[0]
				underMonitor = underMonitor || name[at] == "RunWorkflow:Monitor"
			}
			monitorStep := slices.Contains([]string{pipeline.ActMonitorWindow, pipeline.ActNotifyReview, pipeline.ActReviewRollback}, strings.TrimPrefix(n, "RunActivity:"))
			require.True(t, underRun || (underMonitor && monitorStep),
				"trace %s: %s descends from the run's workflow span", tr.ID, n)
		}
		require.Positive(t, activities, "trace %s: the run's steps", tr.ID)
		most = max(most, activities)
		checked++
	}
	require.Positive(t, checked)
	require.Greater(t, most, 10, "a run that went through training, evaluation and the canary")
	t.Logf("jaeger: the prediction's trace and %d loop runs, each one tree (up to %d activity runs)", checked, most)
}

// extremeLabelDuringCanary waits for the open run's canary, then sends one prediction and its
// label of 10,000 units (serving takes it: it is within the target's registered range).
func (e *e2e) extremeLabelDuringCanary(row dataset.RetailRow) error {
	deadline := time.Now().Add(6 * time.Minute)
	for time.Now().Before(deadline) {
		if st, err := starter.Status(e.ctx, e.c, "demand", ""); err == nil && st.Stage == pipeline.StageCanary {
			hc := &http.Client{Timeout: 5 * time.Second}
			resp, err := traffic.Predict(e.ctx, hc, e.serving, "demand", traffic.FromRetail(row))
			if err != nil {
				return err
			}
			return traffic.Feedback(e.ctx, hc, e.serving, "demand", resp.RequestID, resp.LabelToken, 10000)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("no canary within 6 minutes")
}

// selfStartedMonitor: a Temporal client starts its own monitor (not through the API) whose
// input carries an open fairness review naming itself as reviewer with its own key, and
// acknowledges a rollback with an attestation it signed: the monitor takes reviewers and keys
// from the worker, so the acknowledgement is refused, and production does not move.
func (e *e2e) selfStartedMonitor(mon spec.Spec) {
	t, ctx := e.t, e.ctx
	dep, _, err := registry.New(e.bucket).Deployment(ctx, "demand")
	require.NoError(t, err)
	_, mallory, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key := pipeline.AttestationKey{KID: "mallory", PublicKey: base64.RawURLEncoding.EncodeToString(mallory.Public().(ed25519.PublicKey))}
	review := &pipeline.FairnessReview{ID: "fairness-forged", Model: "demand", Version: dep.Production, OpenedAt: time.Now(),
		Deadline: time.Now().Add(time.Hour), Reviewers: []string{"user:mallory"}, Keys: []pipeline.AttestationKey{key}}
	mon.Monitoring.Interval.Duration = time.Hour
	require.Eventually(t, func() bool { // the monitor the API started is closing
		_, err = starter.StartMonitor(ctx, e.c, pipeline.MonitorInput{Spec: mon, RequestedBy: "mallory", Review: review})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "start a monitor outside the API: %v", err)
	now := time.Now()
	att := pipeline.SignAttestation(mallory, "mallory", pipeline.Attested{Kind: pipeline.KindReview, Model: "demand", Version: dep.Production,
		Review: review.ID, Decision: pipeline.ReviewRollback, Subject: "mallory", Reason: "x", IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(), ID: "m-1", Issuer: "mallory"})
	require.Eventually(t, func() bool {
		_, err = starter.Acknowledge(ctx, e.c, "demand", pipeline.ReviewAck{Review: review.ID, Decision: pipeline.ReviewRollback, Reason: "x", Attestation: att})
		return err != nil && strings.Contains(err.Error(), `unknown key "mallory"`)
	}, 30*time.Second, 200*time.Millisecond, "the self-signed acknowledgement is refused: %v", err)
	require.NoError(t, starter.StopMonitor(ctx, e.c, "demand"))
	after, _, err := registry.New(e.bucket).Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, dep.Production, after.Production, "production did not move")
}

// prometheusPhase is phase 6 of the end-to-end test.
// It returns Prometheus's URL (it runs on until the test ends) and when it started scraping
// and the phase ended.
func (e *e2e) prometheusPhase(sp spec.Spec, metrics *prometheus.Registry, servingURL string, rows []dataset.RetailRow) (string, time.Time, time.Time) {
	t, ctx := e.t, e.ctx
	root, err := stack.RepoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	var mu sync.Mutex
	var slack []string
	channel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		slack = append(slack, string(b))
		mu.Unlock()
	}))
	defer channel.Close()
	amCfg, err := os.ReadFile(filepath.Join(root, "deploy/alertmanager/alertmanager.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slack-webhook-url"), []byte(channel.URL), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pagerduty-routing-key"), []byte("e2e-routing-key"), 0o600))
	cfg := strings.ReplaceAll(string(amCfg), "/etc/alertmanager/secrets/", dir+"/")
	cfg = strings.Replace(cfg, "group_wait: 30s", "group_wait: 1s", 1) // the test's only change besides the secrets
	am := stack.StartAlertmanager(t, cfg)

	// The rules as shipped, but for the `for:` durations (10 minutes is too long for a test).
	rules, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/rules.yml"))
	require.NoError(t, err)
	short := regexp.MustCompile(`(?m)^(\s+for: )\d+[smh]$`).ReplaceAllString(string(rules), "${1}5s")
	require.NotEqual(t, string(rules), short)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(short), 0o600))
	pipelineMetrics := httptest.NewServer(promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	defer pipelineMetrics.Close()
	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	prom := stack.StartPrometheus(t, fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%s]
alerting: {alertmanagers: [{static_configs: [{targets: [%q]}]}]}
scrape_configs:
  - {job_name: driftline-pipeline, static_configs: [{targets: [%q]}]}
  - {job_name: driftline-serving, static_configs: [{targets: [%q]}]}
`, filepath.Join(dir, "rules.yml"), host(am), host(pipelineMetrics.URL), host(servingURL)))
	from := time.Now()

	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var ts traffic.Stats
	go traffic.Run(tctx, servingURL, "demand", rows, 150, &ts)
	mon := sp
	mon.Monitoring.Interval.Duration = 10 * time.Second
	mon.Monitoring.Settle.Duration = 2 * time.Second
	mon.Monitoring.MaxLiveMAE = 0.5
	e.applySpec(mon)
	code, out := e.call(http.MethodPut, "/v1/models/demand/monitor", "dave", api.MonitorRequest{RunFrom: "2026-10-03", RunTo: "2026-10-30"})
	require.Equal(t, http.StatusOK, code, out)

	// Prometheus's view of the alert, polled through its HTTP API.
	state := func() string {
		resp, err := http.Get(prom + "/api/v1/alerts")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil {
			return ""
		}
		for _, a := range out.Data.Alerts {
			if a.Labels["alertname"] == "ModelDegradation" && a.Labels["model"] == "demand" {
				return a.State
			}
		}
		return ""
	}
	var states []string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && (len(states) == 0 || states[len(states)-1] != "firing") {
		if s := state(); s != "" && (len(states) == 0 || states[len(states)-1] != s) {
			states = append(states, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, []string{"pending", "firing"}, states, "ModelDegradation goes pending, then firing (its for: has passed)")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range slack {
			if strings.Contains(m, "ModelDegradation") && strings.Contains(m, "live MAE") {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "Alertmanager posts the page to the channel")

	// The run it leads to: the monitor's live MAE breach started ct/demand.
	var st pipeline.MonitorStatus
	require.Eventually(t, func() bool {
		st, err = starter.MonitorStatus(ctx, e.c, "demand")
		return err == nil && len(st.Runs) > 0
	}, time.Minute, 200*time.Millisecond)
	require.True(t, st.Runs[0].Started, st.Runs[0].Reason)
	require.Contains(t, st.Runs[0].Reason, "over monitoring.max_live_mae 0.500")
	d, err := e.c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID("demand"), st.Runs[0].RunID)
	require.NoError(t, err)
	require.Equal(t, "monitor/demand", d.GetWorkflowExecutionInfo().GetParentExecution().GetWorkflowId(), "started by the monitor")
	md, err := e.c.DescribeWorkflowExecution(ctx, "monitor/demand", "")
	require.NoError(t, err)
	monitorRun := md.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	require.NoError(t, e.c.CancelWorkflow(ctx, pipeline.WorkflowID("demand"), st.Runs[0].RunID))
	require.NoError(t, starter.StopMonitor(ctx, e.c, "demand"))
	e.recordHistory("monitor/demand", monitorRun, "monitor_started_the_loop_signalled")
	e.selfStartedMonitor(mon)

	// The Grafana dashboards' every query runs on this Prometheus (the workers' metrics and the
	// rules as shipped), and the panels an operator opens first show this run's numbers.
	qs, err := dashboards.Load(filepath.Join(root, "deploy/grafana/dashboards"))
	require.NoError(t, err)
	withData := map[string]bool{}
	for _, q := range qs {
		resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(q.ForPrometheus()))
		require.NoError(t, err)
		var out struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Equal(t, "success", out.Status, "%s / %s: %s: %s", q.Dashboard, q.Panel, q.Expr, out.Error)
		if len(out.Data.Result) > 0 {
			withData[q.Panel] = true
		}
	}
	for _, p := range []string{"Answered requests by version and route", "Latency p50 and p99 by route", "Live and estimated MAE against the threshold",
		"Loaded versions", "Runs by outcome (per hour)"} {
		require.True(t, withData[p], "panel %q shows data", p)
	}
	t.Logf("dashboards: %d queries ran on Prometheus, %d panels with data", len(qs), len(withData))
	return prom, from, time.Now()
}

// dashboardPhase: the console draws the serving and monitoring dashboards from their own
// queries against this run's Prometheus: the panels an operator opens first have lines of
// this run's traffic, and no query fails. DRIFTLINE_RECORD_DASHBOARDS=FILE records
// Prometheus's answers for the browser test's screenshots (console/testdata; docs/testing.md).
func dashboardPhase(t *testing.T, store objstore.Bucket, engine *policies.Engine, secret []byte, prom string, from, end time.Time) {
	answers := map[string]json.RawMessage{}
	var mu sync.Mutex
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(prom + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		mu.Lock()
		answers[r.URL.RawQuery] = raw
		mu.Unlock()
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(raw)
	}))
	defer recorder.Close()
	h := (&console.Server{Store: store, Registry: registry.New(store), Verifier: api.DevHS256{Secret: secret}, Engine: engine,
		Metrics: console.Prometheus{URL: recorder.URL}}).Handler()
	tok, err := api.MintDev(secret, "alice", nil, time.Minute)
	require.NoError(t, err)
	endParam := end.UTC().Truncate(time.Second).Format(time.RFC3339)
	fromParam := from.UTC().Truncate(time.Second).Format(time.RFC3339)
	panels := map[string][]string{
		"driftline-serving":    {"Answered requests by version and route", "Latency p50 and p99 by route"},
		"driftline-monitoring": {"Live and estimated MAE against the threshold", "Latency p99 against the SLO", "Monitoring windows: requests and labels"},
	}
	for _, uid := range []string{"driftline-serving", "driftline-monitoring"} {
		r := httptest.NewRequest(http.MethodGet, "/dashboards/"+uid+"?model=demand&from="+fromParam+"&end="+endParam, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()
		require.Equal(t, http.StatusOK, w.Code, body)
		require.NotContains(t, body, `<p class="error">`, "every panel's queries ran")
		for _, title := range panels[uid] {
			i := strings.Index(body, "<figcaption>"+html.EscapeString(title))
			require.GreaterOrEqual(t, i, 0, "%s: panel %q", uid, title)
			fig := body[i : i+strings.Index(body[i:], "</figure>")]
			require.Contains(t, fig, "<polyline", "%s: panel %q draws this run's series", uid, title)
			require.Contains(t, fig, "demand", "%s: panel %q", uid, title)
		}
		if uid == "driftline-serving" {
			i := strings.Index(body, "<figcaption>Loaded versions")
			require.GreaterOrEqual(t, i, 0)
			require.Contains(t, body[i:i+strings.Index(body[i:], "</figure>")], `<p class="big">`, "the loaded versions, as stat cards")
		}
	}
	require.NotEmpty(t, answers)
	if path := os.Getenv("DRIFTLINE_RECORD_DASHBOARDS"); path != "" {
		raw, err := json.MarshalIndent(map[string]any{"from": fromParam, "end": endParam, "model": "demand", "answers": answers}, "", " ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, raw, 0o644))
	}
}
