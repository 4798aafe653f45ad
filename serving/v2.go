package serving

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/driftline/driftline/internal/buildinfo"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
)

// The Open Inference Protocol v2 (KServe, Triton, MLServer): each feature is an input tensor
// of shape [N] (FP64 or an integer type), the answer the output tensor "prediction".

type v2Tensor struct {
	Name       string            `json:"name"`
	Shape      []int             `json:"shape"`
	Datatype   string            `json:"datatype"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	Data       []json.RawMessage `json:"data"`
}

type v2InferRequest struct {
	ID         string           `json:"id"`
	Parameters map[string]any   `json:"parameters"`
	Inputs     []v2Tensor       `json:"inputs"`
	Outputs    []v2OutputWanted `json:"outputs"`
}

// v2OutputWanted is a requested output (all are returned; the names are checked).
type v2OutputWanted struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type v2OutTensor struct {
	Name     string    `json:"name"`
	Shape    []int     `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float64 `json:"data"`
}

type v2InferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version"`
	ID           string         `json:"id"`
	Parameters   map[string]any `json:"parameters"`
	Outputs      []v2OutTensor  `json:"outputs"`
}

func (s *Server) allReady() bool {
	for _, wt := range s.watchers {
		if wt.current.Load().production == nil {
			return false
		}
	}
	return true
}

func (s *Server) v2Ready(w http.ResponseWriter, _ *http.Request) {
	code := http.StatusOK
	if !s.allReady() {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]bool{"ready": code == http.StatusOK})
}

func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	wt, ok := s.watchers[r.PathValue("name")]
	if !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", r.PathValue("name"))
		return
	}
	t := wt.current.Load()
	ready := t.production != nil
	if ready && r.PathValue("version") != "" {
		if _, _, ok := pinnedVersion(w, r, t); !ok {
			return
		}
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"name": wt.name, "ready": ready})
}

func (s *Server) v2Metadata(w http.ResponseWriter, r *http.Request) {
	wt, t, ok := s.servingTable(w, r.PathValue("name"))
	if !ok {
		return
	}
	l, _, ok := pinnedVersion(w, r, t)
	if !ok {
		return
	}
	if l == nil {
		l = t.production
	}
	versions := []string{strconv.Itoa(t.production.version)}
	if t.canary != nil {
		versions = append(versions, strconv.Itoa(t.canary.version))
	}
	inputs := make([]map[string]any, 0, len(l.model.Features))
	for _, f := range l.model.Features {
		inputs = append(inputs, map[string]any{"name": f, "datatype": "FP64", "shape": []int{-1}})
	}
	out := map[string]any{"name": wt.name, "versions": versions, "platform": "driftline",
		"inputs": inputs, "outputs": []map[string]any{{"name": "prediction", "datatype": "FP64", "shape": []int{-1}}},
		// Driftline's own: the order of an [N, F] input tensor's columns.
		"parameters": map[string]any{"feature_order": l.model.Features}}
	if r.PathValue("version") != "" {
		out["versions"] = []string{strconv.Itoa(l.version)}
	}
	writeJSON(w, http.StatusOK, out)
}

// v2Extensions are what Driftline adds to the protocol: explanations (parameters.explain),
// label tokens for feedback, and /versions/{v}/ paths pinning a loaded version.
var v2Extensions = []string{"explanations", "label_tokens", "version_routing"}

// v2Server is the server metadata (GET /v2).
func (s *Server) v2Server(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "driftline", "version": buildinfo.Revision(),
		"extensions": v2Extensions})
}

// pinnedVersion is the version a /versions/{version}/ path names: the production or the
// canary version loaded now (nil, 0 without a version in the path); any other is 404.
func pinnedVersion(w http.ResponseWriter, r *http.Request, t *table) (*loaded, int, bool) {
	l, err := t.version(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		httpError(w, httpStatus(err), "%v", err)
		return nil, 0, false
	}
	if l == nil {
		return nil, 0, true
	}
	return l, l.version, true
}

// version is the loaded version a request names, REST's path or gRPC's model_version: the
// production or the canary version (nil for ""); any other is an error naming what is served.
func (t *table) version(model, v string) (*loaded, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n <= 0:
		return nil, scoreErr(ErrBadInput, "version %q: want a registry version number", v)
	case n == t.production.version:
		return t.production, nil
	case t.canary != nil && n == t.canary.version:
		return t.canary, nil
	}
	served := fmt.Sprintf("production v%d", t.production.version)
	if t.canary != nil {
		served += fmt.Sprintf(", canary v%d", t.canary.version)
	}
	return nil, scoreErr(ErrUnknownModel, "model %q version %d is not served here (%s)", model, n, served)
}

func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("name")
	_, t, ok := s.servingTable(w, name)
	if !ok {
		return
	}
	servedModel(w, name)
	pinned, version, ok := pinnedVersion(w, r, t)
	if !ok {
		return
	}
	var req v2InferRequest
	if code, err := decodeStrict(w, r, &req); err != nil {
		httpError(w, code, "%v", err)
		return
	}
	inputs := make([]v2Input, len(req.Inputs))
	for i, t := range req.Inputs {
		inputs[i] = jsonInput(t)
	}
	routingKey, _ := req.Parameters["routing_key"].(string)
	explain, _ := req.Parameters["explain"].(bool)
	resp, a, err := s.v2Score(r.Context(), v2Call{model: name, table: t, pinned: pinned, version: version, id: req.ID, routingKey: routingKey,
		explain: explain, attrs: v2Attributes(req.Parameters), inputs: inputs, start: start})
	answered(w, name, a.Version, a.Route)
	if err != nil {
		httpError(w, httpStatus(err), "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// v2Call is one infer request of either front end, its inputs not yet decoded.
type v2Call struct {
	model   string
	table   *table
	pinned  *loaded // a /versions/{v}/ path's (nil: routed as usual)
	version int
	id      string
	// routingKey, explain and attrs come from the request's parameters.
	routingKey string
	explain    bool
	attrs      map[string]string
	inputs     []v2Input
	start      time.Time
}

// v2Score decodes and scores an infer request, the answer as the REST response (the gRPC
// front end converts it): the prediction, explanations as base_value and shap_<feature>
// outputs, the route, fallback and label tokens as parameters.
func (s *Server) v2Score(ctx context.Context, c v2Call) (v2InferResponse, ScoreResult, error) {
	features := c.table.production.model.Features
	if c.pinned != nil {
		features = c.pinned.model.Features
	}
	rows, textAttrs, err := v2Rows(c.inputs, features, s.opts.MaxRows, s.opts.MaxValues)
	var se *ScoreError
	switch {
	case errors.As(err, &se):
		return v2InferResponse{}, ScoreResult{}, err
	case err != nil:
		return v2InferResponse{}, ScoreResult{}, scoreErr(ErrBadInput, "%v", err)
	}
	n := len(rows)
	// The answer's id in the log and its label tokens is the server's; the protocol's id (the
	// client's, if it sent one) is echoed, and the server's is the request_id parameter.
	clientID := c.id
	c.id = randomID()
	for k, v := range textAttrs {
		if c.attrs == nil {
			c.attrs = map[string]string{}
		}
		c.attrs[k] = v
	}
	a, err := s.Score(ctx, ScoreRequest{Model: c.model, RequestID: c.id, RoutingKey: c.routingKey, Rows: rows, Explain: c.explain,
		Attributes: c.attrs, Start: c.start, Version: c.version})
	if err != nil {
		return v2InferResponse{}, a, err
	}
	name, start := c.model, c.start
	resp := v2InferResponse{ModelName: name, ModelVersion: strconv.Itoa(a.Version), ID: cmp.Or(clientID, c.id),
		Parameters: map[string]any{"route": a.Route, "request_id": c.id}, Outputs: []v2OutTensor{{Name: "prediction", Shape: []int{n}, Datatype: "FP64", Data: a.Predictions}}}
	if a.Fallback != "" {
		resp.Parameters["fallback"] = a.Fallback
	}
	if n == 1 {
		if tok := s.labelToken(name, a.Version, c.id, start); tok != "" {
			resp.Parameters["label_token"] = tok
		}
	} else if len(s.opts.LabelKey) > 0 {
		toks := make([]string, n)
		for i := range toks {
			toks[i] = s.labelToken(name, a.Version, fmt.Sprintf("%s/%d", c.id, i), start)
		}
		resp.Parameters["label_tokens"] = toks
	}
	if a.Explanations != nil {
		base := v2OutTensor{Name: "base_value", Shape: []int{n}, Datatype: "FP64"}
		contrib := map[string]*v2OutTensor{}
		var order []string
		for _, e := range a.Explanations {
			base.Data = append(base.Data, e.BaseValue)
			for f, c := range e.Contributions {
				t, ok := contrib[f]
				if !ok {
					t = &v2OutTensor{Name: "shap_" + f, Shape: []int{n}, Datatype: "FP64"}
					contrib[f] = t
				}
				t.Data = append(t.Data, c)
			}
		}
		for _, f := range features {
			if _, ok := contrib[f]; ok {
				order = append(order, f)
			}
		}
		resp.Outputs = append(resp.Outputs, base)
		for _, f := range order {
			resp.Outputs = append(resp.Outputs, *contrib[f])
		}
	}
	return resp, a, nil
}

// v2Attributes are a v2 request's attributes (logged with the prediction, used by enrichment):
// the "attributes" parameter (an object of strings) and every other string parameter but
// routing_key, as KServe clients send request metadata.
func v2Attributes(params map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		if sv, ok := v.(string); ok && k != "routing_key" {
			out[k] = sv
		}
	}
	if obj, ok := params["attributes"].(map[string]any); ok {
		for k, v := range obj {
			if sv, ok := v.(string); ok {
				out[k] = sv
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// FeedbackRequest carries ground-truth labels by request id, each with the label token its
// prediction came with.
type FeedbackRequest struct {
	RequestID  string      `json:"request_id"`
	Label      *float64    `json:"label"`
	LabelToken string      `json:"label_token"`
	Labels     []LabelItem `json:"labels"`
}

// LabelItem is one label of a batch.
type LabelItem struct {
	RequestID  string  `json:"request_id"`
	Label      float64 `json:"label"`
	LabelToken string  `json:"label_token"`
}

// feedback takes labels whose token verifies; a request with any refused label is refused as
// a whole (400 malformed, 403 altered or expired, 409 duplicate), the reason counted.
func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.watchers[name]; !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", name)
		return
	}
	if len(s.opts.LabelKey) == 0 {
		httpError(w, http.StatusServiceUnavailable, "feedback is off: serving runs without a label key (--label-key-file)")
		return
	}
	var req FeedbackRequest
	if code, err := decodeStrict(w, r, &req); err != nil {
		httpError(w, code, "%v", err)
		return
	}
	items := req.Labels
	if req.RequestID != "" || req.Label != nil {
		if req.RequestID == "" || req.Label == nil {
			httpError(w, http.StatusBadRequest, "request_id and label go together")
			return
		}
		items = append(items, LabelItem{RequestID: req.RequestID, Label: *req.Label, LabelToken: req.LabelToken})
	}
	if len(items) == 0 {
		httpError(w, http.StatusBadRequest, "no labels: give request_id, label and label_token, or labels")
		return
	}
	now := time.Now()
	bounds := s.watchers[name].current.Load().labels
	for i, it := range items {
		if it.RequestID == "" {
			httpError(w, http.StatusBadRequest, "labels[%d].request_id: required", i)
			return
		}
		if err := bounds.check(it.Label); err != nil {
			s.metrics.LabelsRefused.WithLabelValues(name, predlog.RefusedOutOfRange).Inc()
			httpError(w, http.StatusUnprocessableEntity, "labels[%d] (request %s): %v", i, it.RequestID, err)
			return
		}
		_, err := predlog.VerifyLabelToken(s.opts.LabelKey, it.LabelToken, name, it.RequestID, now, s.opts.LabelTTL)
		if err == nil && !s.seen.add(it.LabelToken, now) {
			err = &predlog.ErrLabelToken{Reason: predlog.RefusedDuplicate, Msg: "this label was sent already"}
		}
		if err == nil {
			// Shared by every replica and kept across restarts: one marker per answer in the
			// bucket, created once.
			created, serr := objstore.CreateOnce(r.Context(), s.opts.Store, seenKey(name, it.RequestID), nil, "")
			switch {
			case serr != nil:
				httpError(w, http.StatusServiceUnavailable, "labels[%d] (request %s): the duplicate check is unavailable (%v): send it again", i, it.RequestID, serr)
				return
			case !created:
				err = &predlog.ErrLabelToken{Reason: predlog.RefusedDuplicate, Msg: "this answer was labelled already"}
			}
		}
		if err != nil {
			var lt *predlog.ErrLabelToken
			errors.As(err, &lt)
			s.metrics.LabelsRefused.WithLabelValues(name, lt.Reason).Inc()
			code := http.StatusForbidden
			switch lt.Reason {
			case predlog.RefusedMissing, predlog.RefusedMalformed:
				code = http.StatusBadRequest
			case predlog.RefusedDuplicate:
				code = http.StatusConflict
			}
			httpError(w, code, "labels[%d] (request %s): %v", i, it.RequestID, err)
			return
		}
	}
	for _, it := range items {
		s.labels.Add(predlog.Label{RequestID: it.RequestID, TimeUnixMs: now.UnixMilli(), Model: name, Label: it.Label, Token: it.LabelToken})
	}
	s.metrics.LabelsAccepted.WithLabelValues(name).Add(float64(len(items)))
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": len(items)})
}

// seenTokens remembers the label tokens taken in the last ttl, so a label is taken once (per
// replica: the canary also keeps one label per request id).
type seenTokens struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
	next time.Time
}

func newSeenTokens(ttl time.Duration) *seenTokens {
	return &seenTokens{ttl: ttl, seen: map[string]time.Time{}}
}

// add records a token; false when it was seen already.
func (t *seenTokens) add(token string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.After(t.next) { // forget expired tokens now and then
		for k, at := range t.seen {
			if now.Sub(at) > t.ttl {
				delete(t.seen, k)
			}
		}
		t.next = now.Add(time.Minute)
	}
	if _, ok := t.seen[token]; ok {
		return false
	}
	if len(t.seen) >= maxSeenTokens { // bounded: forget some (the canary keeps one label per answer anyway)
		n := 0
		for k := range t.seen {
			delete(t.seen, k)
			if n++; n >= maxSeenTokens/10 {
				break
			}
		}
	}
	t.seen[token] = now
	return true
}

// maxSeenTokens bounds a replica's set of label tokens taken (about 100 MB at most).
const maxSeenTokens = 1 << 20

// seenKey is the marker of a labelled answer: feedback/_seen/<model>/<digest of the request
// id>. A label is taken at most LabelTTL after its answer, so a bucket lifecycle rule that
// expires the prefix's objects after LabelTTL (7 days) bounds the set without letting a
// duplicate through.
func seenKey(model, requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return fmt.Sprintf("feedback/_seen/%s/%s", model, hex.EncodeToString(sum[:16]))
}
