package serving

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/driftline/driftline/internal/buildinfo"
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
	if s.draining.Load() {
		return false
	}
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
