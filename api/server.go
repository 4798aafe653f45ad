package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/converter"

	"go.temporal.io/api/serviceerror"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/budget"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Runs is what the API does through Temporal (TemporalRuns in production).
type Runs interface {
	Start(ctx context.Context, in pipeline.RunInput) (runID string, err error)
	Cancel(ctx context.Context, model, reason string) error
	// Waiting is the run of the model waiting for approval and the version it waits on.
	Waiting(ctx context.Context, model string) (runID string, version int, err error)
	Decide(ctx context.Context, model string, approve bool, a pipeline.Approval) (string, error)
	CreateSchedule(ctx context.Context, in pipeline.RunInput, cron string) (string, error)
	DeleteSchedule(ctx context.Context, model string) error
	StartMonitor(ctx context.Context, in pipeline.MonitorInput) (runID string, err error)
	StopMonitor(ctx context.Context, model string) error
	// OpenReview is the monitor's open fairness review (nil: none).
	OpenReview(ctx context.Context, model string) (*pipeline.FairnessReview, error)
	Acknowledge(ctx context.Context, model string, ack pipeline.ReviewAck) (string, error)
	StartMaterialize(ctx context.Context, in pipeline.MaterializeInput) (string, error)
	// Status is a run's status query ("" run: the latest).
	Status(ctx context.Context, model, runID string) (pipeline.Status, error)
	// MonitorStatus is the model's monitor status query.
	MonitorStatus(ctx context.Context, model string) (pipeline.MonitorStatus, error)
	StartFleetRollout(ctx context.Context, in pipeline.FleetRolloutInput) (runID string, err error)
	StopFleetRollout(ctx context.Context, model, fleet string, stop pipeline.FleetStop) error
}

// Server is the control-plane API: the one way to change Driftline's state. Every call is
// authenticated (bearer token), authorised by the RBAC policy in OPA, and audited, whether it
// was allowed or refused.
type Server struct {
	Verifier Verifier
	Engine   *policies.Engine
	Audit    audit.Log
	Runs     Runs
	Registry *registry.Registry
	Attester *Attester
	Now      func() time.Time
	// Codec, when set, is served at /codec/ for the Temporal UI (its codec endpoint) to
	// decode encrypted payloads for callers with a valid token that may view every model;
	// CORSOrigin is the UI's origin.
	Codec      converter.PayloadCodec
	CORSOrigin string
	// MinScheduleInterval is the shortest interval a schedule may fire at
	// (DefaultMinScheduleInterval when 0).
	MinScheduleInterval time.Duration
	// FeatureQueues are the task queues materialization may run on besides the pipeline's
	// (where an online store is configured: the serving worker's --features-queue).
	FeatureQueues []string
	// Online, when set, is the online store feature vectors are read from with
	// ?source=online (driftline api --online-store: Redis, which serving shares).
	Online features.Online

	// BodyBudget bounds the bytes of all request bodies being served at once (default 16 MiB:
	// 256 bodies at the 64 KiB cap); over it a call gets 503 with Retry-After.
	BodyBudget int64

	refusalsOnce sync.Once
	refused      *refusals
}

// anonymous is the aggregate of refused calls without a verified identity.
func (s *Server) anonymous() *refusals {
	s.refusalsOnce.Do(func() { s.refused = &refusals{log: s.Audit, now: s.now, counts: map[refusalKey]int{}} })
	return s.refused
}

// FlushRefusals writes the current minute's record of refused anonymous calls (the minute's
// first refusal after it writes it otherwise); call it at shutdown.
func (s *Server) FlushRefusals(ctx context.Context) error { return s.anonymous().Flush(ctx) }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /v1/attestation-keys", s.keys)
	mux.HandleFunc("PUT /v1/models/{model}/spec", s.applySpec)
	mux.HandleFunc("GET /v1/models/{model}/spec", s.getSpec)
	mux.HandleFunc("POST /v1/runs", s.startRun)
	mux.HandleFunc("GET /v1/audit", s.auditList)
	mux.HandleFunc("GET /v1/models/{model}", s.modelVersions)
	mux.HandleFunc("GET /v1/models/{model}/status", s.runStatus)
	mux.HandleFunc("GET /v1/models/{model}/monitor", s.monitorStatus)
	mux.HandleFunc("GET /v1/models/{model}/versions/{version}", s.version)
	mux.HandleFunc("GET /v1/models/{model}/edge-bundle", s.edgeBundle)
	mux.HandleFunc("PUT /v1/models/{model}/edge-log/{segment}", s.edgeLog)
	s.fleetRoutes(mux)
	mux.HandleFunc("GET /v1/features/{repo}/services/{service}", s.featureVector)
	mux.HandleFunc("GET /v1/models/{model}/reports/{run}/{name}", s.report)
	mux.HandleFunc("POST /v1/models/{model}/runs/cancel", s.cancelRun)
	mux.HandleFunc("POST /v1/models/{model}/approvals", s.approve)
	mux.HandleFunc("POST /v1/models/{model}/promote", s.promote)
	mux.HandleFunc("POST /v1/models/{model}/rollback", s.rollback)
	mux.HandleFunc("PUT /v1/models/{model}/aliases/{alias}", s.setAlias)
	mux.HandleFunc("PUT /v1/models/{model}/schedule", s.putSchedule)
	mux.HandleFunc("DELETE /v1/models/{model}/schedule", s.deleteSchedule)
	mux.HandleFunc("PUT /v1/models/{model}/monitor", s.putMonitor)
	mux.HandleFunc("DELETE /v1/models/{model}/monitor", s.deleteMonitor)
	mux.HandleFunc("POST /v1/models/{model}/monitor/reviews/{review}", s.acknowledge)
	mux.HandleFunc("PUT /v1/features/{repo}", s.applyFeatures)
	mux.HandleFunc("POST /v1/features/{repo}/materialize", s.materialize)
	if s.Codec != nil {
		mux.Handle("/codec/", http.StripPrefix("/codec", s.codecHandler()))
	}
	limit := s.BodyBudget
	if limit <= 0 {
		limit = 16 << 20
	}
	return budget.New(limit).Wrap(mux, maxBody, 1, func(w http.ResponseWriter, used, max int64) {
		reply(w, http.StatusServiceUnavailable, ErrorResponse{Error: fmt.Sprintf("the API holds %d bytes of requests, its budget of %d: try again", used, max)})
	})
}

// codecHandler decodes (and encodes) payloads for the Temporal UI: authenticated, and only for
// identities that may view every model (OPA: view on "*"); each use is audited.
func (s *Server) codecHandler() http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(s.Codec)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.CORSOrigin != "" {
			w.Header().Set("Access-Control-Allow-Origin", s.CORSOrigin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization,Content-Type,X-Namespace")
			if r.Method == http.MethodOptions {
				return
			}
		}
		c, ok := s.begin(w, r, "view", "*")
		if !ok {
			return
		}
		c.audit(c.who.ID, "decode_payloads", r.Header.Get("X-Namespace"), "allowed")
		h.ServeHTTP(w, r)
	})
}

// Actions the RBAC policy grants (examples/rbac.yaml).
const (
	ActStartRun       = "start_run"
	ActCancelRun      = "cancel_run"
	ActApprove        = "approve"
	ActPromote        = "promote"
	ActRollback       = "rollback"
	ActChangeSchedule = "change_schedule"
	ActChangeMonitor  = "change_monitor"
	ActChangeFeatures = "change_features"
	// ActChangeSpec applies a model's spec; ActChangeGovernance is needed besides when the
	// spec changes a governed field (spec.Governance), and is held by another role.
	ActChangeSpec       = "change_spec"
	ActChangeGovernance = "change_governance"
	ActView             = "view"
)

// call is one mutation being served: who asked, what, and the audit of how it ended.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	who    policies.Subject
	action string
	model  string
	detail map[string]any
}

// refuse answers code and audits the refusal. A refusal changes nothing, so an audit
// failure is logged and the refusal still answered.
func (c *call) refuse(code int, kind, why string) {
	actor := c.who.ID
	if actor == "" {
		// No verified identity: counted per source, action and reason in the minute's record.
		c.s.anonymous().add(c.r.RemoteAddr, c.action+"_"+kind, clip(why, 120))
		reply(c.w, code, ErrorResponse{Error: why})
		return
	}
	if err := c.audit(actor, c.action+"_"+kind, why, "refused"); err != nil {
		slog.Error("audit", "action", c.action+"_"+kind, "model", c.model, "err", err)
	}
	reply(c.w, code, ErrorResponse{Error: why})
}

func (c *call) audit(actor, action, reason, decision string) error {
	d := map[string]any{"remote": c.r.RemoteAddr, "method": c.r.Method, "path": c.r.URL.Path}
	if len(c.who.Groups) > 0 {
		d["groups"] = c.who.Groups
	}
	for k, v := range c.detail {
		d[k] = v
	}
	key := fmt.Sprintf("api/%s/%s/%s/%d", actor, action, c.model, time.Now().UnixNano())
	_, err := c.s.Audit.Append(context.WithoutCancel(c.r.Context()), key, audit.Record{Actor: actor, Action: action, Model: c.model,
		Decision: decision, Reason: reason, Details: d})
	return err
}

// permit audits the allowed call before it is carried out: a mutation whose audit record
// cannot be written is not carried out (503). False: answered.
func (c *call) permit(reason string) bool {
	if err := c.audit(c.who.ID, c.action, reason, "allowed"); err != nil {
		slog.Error("audit: the call is not carried out", "action", c.action, "model", c.model, "err", err)
		w := c.w
		w.Header().Set("Retry-After", "5")
		reply(w, http.StatusServiceUnavailable, ErrorResponse{Error: "the audit trail cannot be written, so nothing was changed: try again later (" + err.Error() + ")"})
		return false
	}
	return true
}

// begin authenticates and authorises a call; on refusal it has already answered.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, action, model string) (*call, bool) {
	c := &call{s: s, w: w, r: r, action: action, model: model, detail: map[string]any{}}
	if model != "" && model != "*" && !spec.ValidName(model) {
		// Never part of a key: the refusal goes to the audit chain of invalid names.
		c.model = audit.InvalidChain
		c.detail["invalid_name"] = clip(model, 128)
		c.refuse(http.StatusBadRequest, "invalid", fmt.Sprintf("%q is not a model name (lowercase letters, digits, _ and -, at most 63)", clip(model, 128)))
		return nil, false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="driftline"`)
		c.refuse(http.StatusUnauthorized, "unauthenticated", "a bearer token is required (DRIFTLINE_TOKEN)")
		return nil, false
	}
	who, err := s.Verifier.Verify(r.Context(), token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="driftline", error="invalid_token"`)
		c.refuse(http.StatusUnauthorized, "unauthenticated", err.Error())
		return nil, false
	}
	c.who = who
	if model == "" {
		return c, true
	}
	return c, c.authorize(action, model, nil)
}

// authorize asks OPA; pii (when not nil) also checks reading the model's dataset.
func (c *call) authorize(action, model string, pii *bool) bool {
	c.model = model
	d, err := c.s.Engine.Authorize(c.r.Context(), c.who, action, model)
	if err == nil && d.Allow && pii != nil {
		d, err = c.s.Engine.AuthorizeDataset(c.r.Context(), c.who, model, *pii)
	}
	if err != nil {
		reply(c.w, http.StatusInternalServerError, ErrorResponse{Error: "policy: " + err.Error()})
		return false
	}
	if !d.Allow {
		c.refuse(http.StatusForbidden, "forbidden", strings.Join(d.Reasons, "; "))
		return false
	}
	return true
}

// done answers an allowed call that was audited (permit) and carried out.
func (c *call) done(v any) {
	reply(c.w, http.StatusOK, v)
}

// clip shortens a caller's string for an error or a record.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// fail answers an error of the operation itself (after authorisation) and audits it.
func (c *call) fail(err error) {
	code := http.StatusConflict
	var nf *serviceerror.NotFound
	var ae *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &nf), errors.Is(err, registry.ErrNotFound):
		code = http.StatusNotFound
	case errors.As(err, &ae), errors.Is(err, registry.ErrConflict), errors.Is(err, errConflict):
		code = http.StatusConflict
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	c.refuse(code, "failed", err.Error())
}

var (
	errBadRequest = errors.New("bad request")
	errConflict   = errors.New("conflict")
)

// maxBody is the largest request body the API reads.
const maxBody = 64 << 10

// decode reads a JSON body strictly (unknown fields refused, 64 KiB at most).
func decode(r *http.Request, w http.ResponseWriter, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", errBadRequest, err)
	}
	return nil
}

// RunRequest starts a run of a model's registered spec: an optional window and force.
type RunRequest struct {
	Model string `json:"model"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Force bool   `json:"force,omitempty"`
}

func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActStartRun, "")
	if !ok {
		return
	}
	var req RunRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	if !c.named(req.Model) || !c.authorize(ActStartRun, req.Model, nil) {
		return
	}
	sp, ver, ok := c.registered()
	if !ok {
		return
	}
	// Reading the dataset: the registered contract says whether it holds personal data.
	pii := sp.Contract.HasPII()
	if !c.authorize(ActStartRun, sp.Model, &pii) {
		return
	}
	origin, ok := c.origin(pipeline.KindRun, ver)
	if !ok {
		return
	}
	c.detail["window"], c.detail["force"] = req.From+".."+req.To, req.Force
	if !c.permit("") {
		return
	}
	runID, err := s.Runs.Start(r.Context(), pipeline.RunInput{Spec: sp, From: req.From, To: req.To, Force: req.Force, RequestedBy: c.who.ID,
		Origin: origin, SpecVersion: ver.Version})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(RunStarted{WorkflowID: pipeline.WorkflowID(sp.Model), RunID: runID, RequestedBy: c.who.ID, SpecVersion: ver.Version})
}

// named checks a model name a request body carries; false: refused (400).
func (c *call) named(model string) bool {
	if spec.ValidName(model) {
		return true
	}
	c.detail["invalid_name"] = clip(model, 128)
	c.model = audit.InvalidChain
	c.fail(fmt.Errorf("%w: model %q is not a model name (lowercase letters, digits, _ and -, at most 63)", errBadRequest, clip(model, 128)))
	return false
}

// registered loads the call's model's current spec from the registry; false: refused (404
// when the model has none).
func (c *call) registered() (spec.Spec, registry.SpecVersion, bool) {
	sp, ver, _, err := c.s.Registry.CurrentSpec(c.r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return sp, ver, false
	}
	c.detail["spec_version"], c.detail["spec_hash"] = ver.Version, ver.Hash
	return sp, ver, true
}

// origin signs the attestation that the caller started a run, monitor or schedule of the
// registered spec version (the policy step and the monitor verify it).
func (c *call) origin(kind string, ver registry.SpecVersion) (string, bool) {
	token, att, err := c.s.Attester.SignOrigin(pipeline.Attested{Kind: kind, Model: c.model, Subject: c.who.ID, Groups: c.who.Groups,
		SpecVersion: ver.Version, SpecHash: ver.Hash}, c.s.now())
	if err != nil {
		c.fail(err)
		return "", false
	}
	c.detail["origin_id"] = att.ID
	return token, true
}

// ReasonRequest carries why.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActCancelRun, r.PathValue("model"))
	if !ok {
		return
	}
	var req ReasonRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	if !c.permit(req.Reason) {
		return
	}
	if err := s.Runs.Cancel(r.Context(), c.model, req.Reason); err != nil {
		c.fail(err)
		return
	}
	c.done(RunCancelled{Cancelled: pipeline.WorkflowID(c.model)})
}

// ApprovalRequest decides on the candidate a run waits on.
type ApprovalRequest struct {
	Version  int    `json:"version"`
	Decision string `json:"decision"` // approve or reject
	Reason   string `json:"reason"`
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActApprove, r.PathValue("model"))
	if !ok {
		return
	}
	var req ApprovalRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	c.detail["version"], c.detail["decision"] = req.Version, req.Decision
	switch {
	case req.Decision != "approve" && req.Decision != "reject":
		c.fail(fmt.Errorf("%w: decision %q is not approve or reject", errBadRequest, clip(req.Decision, 32)))
		return
	case strings.TrimSpace(req.Reason) == "":
		c.fail(fmt.Errorf("%w: a reason is required", errBadRequest))
		return
	}
	runID, waiting, err := s.Runs.Waiting(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	if waiting != req.Version {
		c.fail(fmt.Errorf("%w: run %s of %s waits for a decision on v%d, not v%d", errConflict, runID, c.model, waiting, req.Version))
		return
	}
	token, att, err := s.Attester.Sign(pipeline.Attested{Model: c.model, Version: req.Version, RunID: runID, Decision: req.Decision,
		Subject: c.who.ID, Groups: c.who.Groups, Reason: req.Reason}, s.now())
	if err != nil {
		c.fail(err)
		return
	}
	c.detail["run_id"], c.detail["attestation_id"] = runID, att.ID
	if !c.permit(req.Reason) {
		return
	}
	out, err := s.Runs.Decide(r.Context(), c.model, req.Decision == "approve", pipeline.Approval{Approver: c.who.ID, Groups: c.who.Groups,
		Reason: req.Reason, Version: req.Version, Attestation: token})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(DecisionResponse{Result: out, Approver: c.who.ID, RunID: runID, AttestationID: att.ID})
}

func (s *Server) keys(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, AttestationKeys{Keys: []pipeline.AttestationKey{s.Attester.Key()}})
}

// PointerRequest changes the deployment pointer; ExpectedETag (optional) makes it conditional
// on the pointer the caller read.
type PointerRequest struct {
	Version      int    `json:"version,omitempty"`
	Reason       string `json:"reason"`
	ExpectedETag string `json:"expected_etag,omitempty"`
}

func (s *Server) pointer(w http.ResponseWriter, r *http.Request, action string, detail map[string]any, apply func(c *call, req PointerRequest, etag string) (registry.Deployment, error)) {
	c, ok := s.begin(w, r, action, r.PathValue("model"))
	if !ok {
		return
	}
	for k, v := range detail {
		c.detail[k] = v
	}
	var req PointerRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		c.fail(fmt.Errorf("%w: a reason is required", errBadRequest))
		return
	}
	etag := req.ExpectedETag
	if etag == "" {
		_, cur, err := s.Registry.Deployment(r.Context(), c.model)
		if err != nil {
			c.fail(err)
			return
		}
		etag = cur
	}
	c.detail["version"], c.detail["expected_etag"] = req.Version, etag
	if !c.permit(req.Reason) {
		return
	}
	d, err := apply(c, req, etag)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(d)
}

func (s *Server) change(c *call, req PointerRequest, etag string) registry.Change {
	return registry.Change{Actor: c.who.ID, Reason: req.Reason, Key: fmt.Sprintf("api/%s/%s/%s/%s/%d", c.action, c.model, c.who.ID, etag, req.Version)}
}

func (s *Server) promote(w http.ResponseWriter, r *http.Request) {
	s.pointer(w, r, ActPromote, nil, func(c *call, req PointerRequest, etag string) (registry.Deployment, error) {
		return s.Registry.PromoteIf(r.Context(), c.model, req.Version, etag, s.change(c, req, etag))
	})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	s.pointer(w, r, ActRollback, nil, func(c *call, req PointerRequest, etag string) (registry.Deployment, error) {
		return s.Registry.RollbackIf(r.Context(), c.model, etag, s.change(c, req, etag))
	})
}

func (s *Server) setAlias(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	if !spec.ValidName(alias) {
		reply(w, http.StatusBadRequest, ErrorResponse{Error: fmt.Sprintf("alias %q is not a name (lowercase letters, digits, _ and -)", clip(alias, 64))})
		return
	}
	s.pointer(w, r, ActPromote, map[string]any{"alias": alias}, func(c *call, req PointerRequest, etag string) (registry.Deployment, error) {
		return s.Registry.SetAliasIf(r.Context(), c.model, alias, req.Version, etag, s.change(c, req, etag))
	})
}

// ScheduleRequest creates or replaces a model's schedule of its registered spec.
type ScheduleRequest struct {
	Cron string `json:"cron"`
}

// DefaultMinScheduleInterval is the shortest interval between two firings of a schedule.
const DefaultMinScheduleInterval = time.Hour

func (s *Server) putSchedule(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActChangeSchedule, r.PathValue("model"))
	if !ok {
		return
	}
	var req ScheduleRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	min := s.MinScheduleInterval
	if min == 0 {
		min = DefaultMinScheduleInterval
	}
	if err := CheckCron(req.Cron, min); err != nil {
		c.fail(fmt.Errorf("%w: %v", errBadRequest, err))
		return
	}
	sp, ver, ok := c.registered()
	if !ok {
		return
	}
	origin, ok := c.origin(pipeline.KindSchedule, ver)
	if !ok {
		return
	}
	c.detail["cron"] = req.Cron
	if !c.permit("") {
		return
	}
	id, err := s.Runs.CreateSchedule(r.Context(), pipeline.RunInput{Spec: sp, Origin: origin, SpecVersion: ver.Version}, req.Cron)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(ScheduleResponse{ScheduleID: id, Cron: req.Cron, SpecVersion: ver.Version})
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActChangeSchedule, r.PathValue("model"))
	if !ok {
		return
	}
	if !c.permit("") {
		return
	}
	if err := s.Runs.DeleteSchedule(r.Context(), c.model); err != nil {
		c.fail(err)
		return
	}
	c.done(ScheduleDeleted{Deleted: c.model})
}

// MonitorRequest starts a model's monitor on its registered spec and, optionally, the window
// a run the monitor starts trains on (empty: the spec's window ending yesterday).
type MonitorRequest struct {
	RunFrom string `json:"run_from,omitempty"`
	RunTo   string `json:"run_to,omitempty"`
}

func (s *Server) putMonitor(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActChangeMonitor, r.PathValue("model"))
	if !ok {
		return
	}
	var req MonitorRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	sp, ver, ok := c.registered()
	if !ok {
		return
	}
	origin, ok := c.origin(pipeline.KindMonitor, ver)
	if !ok {
		return
	}
	c.detail["interval"] = sp.Monitoring.Interval.String()
	if !c.permit("") {
		return
	}
	id, err := s.Runs.StartMonitor(r.Context(), pipeline.MonitorInput{Spec: sp, RunFrom: req.RunFrom, RunTo: req.RunTo, RequestedBy: c.who.ID, Origin: origin})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(MonitorStarted{WorkflowID: pipeline.MonitorWorkflowID(c.model), RunID: id, SpecVersion: ver.Version})
}

func (s *Server) deleteMonitor(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActChangeMonitor, r.PathValue("model"))
	if !ok {
		return
	}
	if !c.permit("") {
		return
	}
	if err := s.Runs.StopMonitor(r.Context(), c.model); err != nil {
		c.fail(err)
		return
	}
	c.done(MonitorStopped{Stopped: pipeline.MonitorWorkflowID(c.model)})
}

// FeaturesRequest applies feature definitions (YAML) to a repository of the registry of
// definitions; Model names the model whose registered spec supplies the contract the
// definitions are checked against, and on which the caller must be allowed change_features.
type FeaturesRequest struct {
	Definitions  string `json:"definitions"`
	Model        string `json:"model"`
	ExpectedETag string `json:"expected_etag,omitempty"`
	Reason       string `json:"reason"`
}

// beginForModel authenticates a call, decodes its request and authorises the action on the
// model the request names, whose registered spec it returns.
func (s *Server) beginForModel(w http.ResponseWriter, r *http.Request, action string, req any, model func() string) (*call, spec.Spec, bool) {
	c, ok := s.begin(w, r, action, "")
	if !ok {
		return nil, spec.Spec{}, false
	}
	if err := decode(r, w, req); err != nil {
		c.fail(err)
		return nil, spec.Spec{}, false
	}
	if !c.named(model()) || !c.authorize(action, model(), nil) {
		return nil, spec.Spec{}, false
	}
	sp, _, ok := c.registered()
	return c, sp, ok
}

func (s *Server) applyFeatures(w http.ResponseWriter, r *http.Request) {
	var req FeaturesRequest
	c, sp, ok := s.beginForModel(w, r, ActChangeFeatures, &req, func() string { return req.Model })
	if !ok {
		return
	}
	repo := r.PathValue("repo")
	if !spec.ValidName(repo) {
		c.fail(fmt.Errorf("%w: feature repository %q is not a name (lowercase letters, digits, _ and -)", errBadRequest, clip(repo, 128)))
		return
	}
	c.detail["repo"], c.detail["hash"] = repo, features.Hash([]byte(req.Definitions))
	defs, err := features.ParseRepo([]byte(req.Definitions))
	if err == nil {
		err = defs.Validate(map[string]contract.Contract{sp.Dataset.Name: sp.Contract})
	}
	switch {
	case err != nil:
		c.fail(fmt.Errorf("%w: definitions: %v", errBadRequest, err))
		return
	case strings.TrimSpace(req.Reason) == "":
		c.fail(fmt.Errorf("%w: a reason is required", errBadRequest))
		return
	}
	applied, cur, etag, _, err := features.Current(r.Context(), s.Registry.Store, repo)
	if err != nil {
		c.fail(err)
		return
	}
	// A repository belongs to the model group that first applied it: change_features on a
	// model of another group does not reach it.
	if !c.owns(applied.Owner, repo) {
		return
	}
	expected := req.ExpectedETag
	if expected == "" {
		expected = etag
	}
	changes := features.Plan(cur, defs)
	names := make([]string, len(changes))
	for i, ch := range changes {
		names[i] = ch.String()
	}
	c.detail["changes"] = names
	if !c.permit(req.Reason) {
		return
	}
	applied, changed, err := features.Apply(r.Context(), s.Registry.Store, repo, []byte(req.Definitions), expected, c.who.ID, req.Reason,
		s.Engine.OwnerOf(c.model))
	if errors.Is(err, features.ErrConflict) {
		err = fmt.Errorf("%w: %v", errConflict, err)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.done(FeaturesApplied{Repo: repo, Version: applied.Version, Changed: changed, Changes: changes, Key: applied.Key})
}

// MaterializeRequest materializes a view of an applied repository into the online store,
// chunk by chunk from From to To (RFC 3339 or dates); Model's registered spec supplies the
// source's contract.
type MaterializeRequest struct {
	View  string `json:"view"`
	Model string `json:"model"`
	From  string `json:"from"`
	To    string `json:"to"`
	Chunk string `json:"chunk,omitempty"` // a Go duration, 24h by default
	// TaskQueue runs the chunks where the online store is (the serving worker's
	// --features-queue for the embedded store; empty: the pipeline worker's). It must be one
	// of the API's configured feature queues.
	TaskQueue string `json:"task_queue,omitempty"`
}

func (s *Server) materialize(w http.ResponseWriter, r *http.Request) {
	var req MaterializeRequest
	c, _, ok := s.beginForModel(w, r, ActChangeFeatures, &req, func() string { return req.Model })
	if !ok {
		return
	}
	repo := r.PathValue("repo")
	c.detail["repo"], c.detail["view"], c.detail["from"], c.detail["to"], c.detail["task_queue"] = repo, req.View, req.From, req.To, req.TaskQueue
	if req.TaskQueue != "" && !slices.Contains(s.FeatureQueues, req.TaskQueue) {
		c.fail(fmt.Errorf("%w: task queue %q is not one of the API's feature queues (%s): materialization runs only where an online store is configured",
			errBadRequest, clip(req.TaskQueue, 64), strings.Join(s.FeatureQueues, ", ")))
		return
	}
	when := func(v string) (time.Time, error) {
		for _, layout := range []string{time.RFC3339, "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("%w: %q is not RFC 3339 or a date", errBadRequest, clip(v, 64))
	}
	from, err := when(req.From)
	if err != nil {
		c.fail(err)
		return
	}
	to, err := when(req.To)
	if err != nil {
		c.fail(err)
		return
	}
	chunk := 24 * time.Hour
	if req.Chunk != "" {
		if chunk, err = time.ParseDuration(req.Chunk); err != nil || chunk <= 0 {
			c.fail(fmt.Errorf("%w: chunk %q is not a positive duration", errBadRequest, clip(req.Chunk, 32)))
			return
		}
	}
	applied, defs, _, ok, err := features.Current(r.Context(), s.Registry.Store, repo)
	switch {
	case err != nil:
		c.fail(err)
		return
	case !ok:
		c.fail(fmt.Errorf("%w: feature repository %q has no applied definitions", errConflict, clip(repo, 128)))
		return
	case !c.owns(applied.Owner, repo):
		return
	}
	if _, ok := defs.View(req.View); !ok {
		c.fail(fmt.Errorf("%w: repository %q has no view %q", errBadRequest, repo, clip(req.View, 64)))
		return
	}
	raw, err := s.Registry.SpecSource(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	if !c.permit("") {
		return
	}
	id, err := s.Runs.StartMaterialize(r.Context(), pipeline.MaterializeInput{Repo: repo, View: req.View, SpecYAML: string(raw),
		Watermark: from, Until: to, Chunk: chunk, TaskQueue: req.TaskQueue})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(MaterializeStarted{WorkflowID: pipeline.MaterializeWorkflowID(repo, req.View), RunID: id})
}

// owns reports whether the call's model may change a feature repository of owner (none yet:
// any); false: refused (403).
func (c *call) owns(owner, repo string) bool {
	if owner == "" || c.s.Engine.InScope(owner, c.model) {
		return true
	}
	c.refuse(http.StatusForbidden, "forbidden", fmt.Sprintf("feature repository %s belongs to %s; model %s is not one of its models", repo, owner, c.model))
	return false
}

// ReviewRequest decides the monitor's open fairness review.
type ReviewRequest struct {
	Decision string `json:"decision"` // accept, retrain or rollback
	Reason   string `json:"reason"`
}

// acknowledge decides a fairness review: whoever may approve the model may acknowledge its
// reviews (a rollback also needs the rollback action). The API attests the caller's identity
// and decision; the monitor verifies the attestation and carries the decision out.
func (s *Server) acknowledge(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActApprove, r.PathValue("model"))
	if !ok {
		return
	}
	c.action = "acknowledge_review" // what the audit trail calls it, once approve is allowed
	var req ReviewRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	id := r.PathValue("review")
	c.detail["review"], c.detail["decision"] = clip(id, 64), req.Decision
	switch {
	case req.Decision != pipeline.ReviewAccept && req.Decision != pipeline.ReviewRetrain && req.Decision != pipeline.ReviewRollback:
		c.fail(fmt.Errorf("%w: decision %q is not accept, retrain or rollback", errBadRequest, clip(req.Decision, 32)))
		return
	case strings.TrimSpace(req.Reason) == "":
		c.fail(fmt.Errorf("%w: a reason is required", errBadRequest))
		return
	case req.Decision == pipeline.ReviewRollback && !c.authorize(ActRollback, c.model, nil):
		return
	}
	open, err := s.Runs.OpenReview(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	if open == nil || open.ID != id {
		cur := "none"
		if open != nil {
			cur = open.ID
		}
		c.fail(fmt.Errorf("%w: the monitor of %s has no open review %s (open: %s)", errConflict, c.model, clip(id, 64), cur))
		return
	}
	token, att, err := s.Attester.Sign(pipeline.Attested{Kind: pipeline.KindReview, Model: c.model, Version: open.Version, Review: id,
		Decision: req.Decision, Subject: c.who.ID, Groups: c.who.Groups, Reason: req.Reason}, s.now())
	if err != nil {
		c.fail(err)
		return
	}
	c.detail["attestation_id"] = att.ID
	if !c.permit(req.Reason) {
		return
	}
	out, err := s.Runs.Acknowledge(r.Context(), c.model, pipeline.ReviewAck{Review: id, Decision: req.Decision, Reason: req.Reason, Attestation: token})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(ReviewDecision{Result: out, Review: id, By: c.who.ID, AttestationID: att.ID})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
