package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// Client calls the control-plane API with a bearer token: the one client of its routes, used by
// the CLI, the end-to-end test and the examples. A refusal is an *Error with the status and the
// API's words.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8090
	Token   string
	HTTP    *http.Client // nil: a client with a 60 s timeout
}

// Error is an answer other than 200.
type Error struct {
	Method, Path string
	StatusCode   int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, e.Message)
}

// StatusOf is the HTTP status of an API error (0 when err is not one).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

var defaultHTTP = &http.Client{Timeout: 60 * time.Second}

// Do sends in as JSON (nil: no body) and decodes a 200's JSON answer into out (nil: ignored).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("control-plane API %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return &Error{Method: method, Path: path, StatusCode: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if r, ok := out.(*json.RawMessage); ok {
		*r = raw
		return nil
	}
	return json.Unmarshal(raw, out)
}

func request[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.Do(ctx, method, path, in, &out)
	return out, err
}

func modelPath(model string, rest ...string) string {
	p := "/v1/models/" + url.PathEscape(model)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// ApplySpec registers a model's spec (PUT /v1/models/{m}/spec).
func (c *Client) ApplySpec(ctx context.Context, model string, req SpecRequest) (SpecResponse, error) {
	return request[SpecResponse](ctx, c, http.MethodPut, modelPath(model, "spec"), req)
}

// Spec is a model's registered spec (GET /v1/models/{m}/spec).
func (c *Client) Spec(ctx context.Context, model string) (SpecResponse, error) {
	return request[SpecResponse](ctx, c, http.MethodGet, modelPath(model, "spec"), nil)
}

// StartRun starts the loop on a model's registered spec (POST /v1/runs).
func (c *Client) StartRun(ctx context.Context, req RunRequest) (RunStarted, error) {
	return request[RunStarted](ctx, c, http.MethodPost, "/v1/runs", req)
}

// CancelRun cancels a model's open run.
func (c *Client) CancelRun(ctx context.Context, model, reason string) (RunCancelled, error) {
	return request[RunCancelled](ctx, c, http.MethodPost, modelPath(model, "runs", "cancel"), ReasonRequest{Reason: reason})
}

// Decide approves or rejects the candidate a model's run waits on.
func (c *Client) Decide(ctx context.Context, model string, req ApprovalRequest) (DecisionResponse, error) {
	return request[DecisionResponse](ctx, c, http.MethodPost, modelPath(model, "approvals"), req)
}

// Promote makes a registered version production.
func (c *Client) Promote(ctx context.Context, model string, req PointerRequest) (registry.Deployment, error) {
	return request[registry.Deployment](ctx, c, http.MethodPost, modelPath(model, "promote"), req)
}

// Rollback restores the previous production version.
func (c *Client) Rollback(ctx context.Context, model string, req PointerRequest) (registry.Deployment, error) {
	return request[registry.Deployment](ctx, c, http.MethodPost, modelPath(model, "rollback"), req)
}

// SetAlias points an alias at a version.
func (c *Client) SetAlias(ctx context.Context, model, alias string, req PointerRequest) (registry.Deployment, error) {
	return request[registry.Deployment](ctx, c, http.MethodPut, modelPath(model, "aliases", alias), req)
}

// PutSchedule creates or replaces a model's retraining schedule.
func (c *Client) PutSchedule(ctx context.Context, model string, req ScheduleRequest) (ScheduleResponse, error) {
	return request[ScheduleResponse](ctx, c, http.MethodPut, modelPath(model, "schedule"), req)
}

// DeleteSchedule deletes it.
func (c *Client) DeleteSchedule(ctx context.Context, model string) (ScheduleDeleted, error) {
	return request[ScheduleDeleted](ctx, c, http.MethodDelete, modelPath(model, "schedule"), nil)
}

// StartMonitor starts a model's monitor on its registered spec.
func (c *Client) StartMonitor(ctx context.Context, model string, req MonitorRequest) (MonitorStarted, error) {
	return request[MonitorStarted](ctx, c, http.MethodPut, modelPath(model, "monitor"), req)
}

// StopMonitor stops it.
func (c *Client) StopMonitor(ctx context.Context, model string) (MonitorStopped, error) {
	return request[MonitorStopped](ctx, c, http.MethodDelete, modelPath(model, "monitor"), nil)
}

// Acknowledge decides on an open fairness review.
func (c *Client) Acknowledge(ctx context.Context, model, review string, req ReviewRequest) (ReviewDecision, error) {
	return request[ReviewDecision](ctx, c, http.MethodPost, modelPath(model, "monitor", "reviews", review), req)
}

// ApplyFeatures applies a feature repository's definitions.
func (c *Client) ApplyFeatures(ctx context.Context, repo string, req FeaturesRequest) (FeaturesApplied, error) {
	return request[FeaturesApplied](ctx, c, http.MethodPut, "/v1/features/"+url.PathEscape(repo), req)
}

// Materialize starts materializing a feature view into the online store.
func (c *Client) Materialize(ctx context.Context, repo string, req MaterializeRequest) (MaterializeStarted, error) {
	return request[MaterializeStarted](ctx, c, http.MethodPost, "/v1/features/"+url.PathEscape(repo)+"/materialize", req)
}

// Status is a run's status (run "": the latest).
func (c *Client) Status(ctx context.Context, model, run string) (pipeline.Status, error) {
	p := modelPath(model, "status")
	if run != "" {
		p += "?run=" + url.QueryEscape(run)
	}
	return request[pipeline.Status](ctx, c, http.MethodGet, p, nil)
}

// MonitorStatus is a model's monitor status.
func (c *Client) MonitorStatus(ctx context.Context, model string) (pipeline.MonitorStatus, error) {
	return request[pipeline.MonitorStatus](ctx, c, http.MethodGet, modelPath(model, "monitor"), nil)
}

// Model is a model's deployment and versions.
func (c *Client) Model(ctx context.Context, model string) (ModelResponse, error) {
	return request[ModelResponse](ctx, c, http.MethodGet, modelPath(model), nil)
}

// Version is one registered version (0: production) with its records and audit trail.
func (c *Client) Version(ctx context.Context, model string, version int) (VersionResponse, error) {
	return request[VersionResponse](ctx, c, http.MethodGet, modelPath(model, "versions", strconv.Itoa(version)), nil)
}

// Report is one of a run's reports as stored (run "monitor": the monitor's windows).
func (c *Client) Report(ctx context.Context, model, run, name string) (json.RawMessage, error) {
	return request[json.RawMessage](ctx, c, http.MethodGet, modelPath(model, "reports", run, name), nil)
}

// Audit lists the audit records of a model ("" for every model) since a duration ago.
func (c *Client) Audit(ctx context.Context, model string, since time.Duration) ([]audit.Record, error) {
	q := url.Values{"since": {since.String()}}
	if model != "" {
		q.Set("model", model)
	}
	return request[[]audit.Record](ctx, c, http.MethodGet, "/v1/audit?"+q.Encode(), nil)
}

// FeatureVector is a feature service's vector of one entity: point in time as of at from the
// offline data, or (online) as the API's online store serves it now.
func (c *Client) FeatureVector(ctx context.Context, repo, service, model, key string, at time.Time, online bool) (FeatureVector, error) {
	q := url.Values{"model": {model}, "key": {key}}
	if online {
		q.Set("source", "online")
	} else {
		q.Set("at", at.UTC().Format(time.RFC3339))
	}
	return request[FeatureVector](ctx, c, http.MethodGet, "/v1/features/"+url.PathEscape(repo)+"/services/"+url.PathEscape(service)+"?"+q.Encode(), nil)
}

// AttestationKeys are the public keys that verify the API's attestations.
func (c *Client) AttestationKeys(ctx context.Context) (AttestationKeys, error) {
	return request[AttestationKeys](ctx, c, http.MethodGet, "/v1/attestation-keys", nil)
}

// ApplyFleet creates a model's fleet or sets its members (PUT /v1/models/{m}/fleets/{f}).
func (c *Client) ApplyFleet(ctx context.Context, model, fleet string, req FleetRequest) (registry.Fleet, error) {
	return request[registry.Fleet](ctx, c, http.MethodPut, modelPath(model, "fleets", fleet), req)
}

// Fleet is a fleet with its devices' last statuses (GET /v1/models/{m}/fleets/{f}).
func (c *Client) Fleet(ctx context.Context, model, fleet string) (FleetView, error) {
	return request[FleetView](ctx, c, http.MethodGet, modelPath(model, "fleets", fleet), nil)
}

// StartFleetRollout rolls the production version out to a fleet (POST .../rollouts).
func (c *Client) StartFleetRollout(ctx context.Context, model, fleet string, req FleetRolloutRequest) (FleetRolloutStarted, error) {
	return request[FleetRolloutStarted](ctx, c, http.MethodPost, modelPath(model, "fleets", fleet, "rollouts"), req)
}

// StopFleetRollout stops a fleet's rollout: the fleet rolls back (POST .../rollouts/stop).
func (c *Client) StopFleetRollout(ctx context.Context, model, fleet, reason string) (map[string]string, error) {
	return request[map[string]string](ctx, c, http.MethodPost, modelPath(model, "fleets", fleet, "rollouts", "stop"), FleetStopRequest{Reason: reason})
}
