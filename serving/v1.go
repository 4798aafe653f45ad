package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/driftline/driftline/predlog"
)

// The v1 REST API: POST /v1/models/{name}:predict and GET /v1/models/{name}.

// servingTable finds a model's current table, answering 404 or 503 itself when there is none.
func (s *Server) servingTable(w http.ResponseWriter, name string) (*watcher, *table, bool) {
	wt, ok := s.watchers[name]
	if !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", name)
		return nil, nil, false
	}
	t := wt.current.Load()
	if t.production == nil {
		httpError(w, http.StatusServiceUnavailable, "model %q has no production version loaded", wt.name)
		return nil, nil, false
	}
	return wt, t, true
}

func (s *Server) describe(w http.ResponseWriter, r *http.Request) {
	wt, t, ok := s.servingTable(w, r.PathValue("name"))
	if !ok {
		return
	}
	out := map[string]any{"model": wt.name, "production": t.production.version, "features": t.production.model.Features,
		"target": t.production.model.Target}
	if t.canary != nil {
		out["canary"], out["canary_share"] = t.canary.version, t.share
	}
	writeJSON(w, http.StatusOK, out)
}

// PredictRequest is the body of POST /v1/models/{name}:predict: one record in features, or a
// batch in instances.
type PredictRequest struct {
	RequestID  string           `json:"request_id"`
	RoutingKey string           `json:"routing_key"`
	Features   map[string]any   `json:"features"`
	Instances  []map[string]any `json:"instances"`
	Explain    bool             `json:"explain"`
	// Attributes are logged with the prediction but not used by the model (e.g. the protected
	// attribute the canary checks for disparate impact).
	Attributes map[string]string `json:"attributes"`
	// numeric holds the features when the fast decoder read them (all numbers), in place of
	// Features.
	numeric map[string]float64
}

// numbers checks that every feature value is a JSON number, naming the first that is not.
func numbers(raw map[string]any, at string) (map[string]float64, error) {
	out := make(map[string]float64, len(raw))
	for k, v := range raw {
		f, ok := v.(float64)
		if !ok {
			b, _ := json.Marshal(v)
			return nil, fmt.Errorf("%s%s: want a number, got %s", at, k, b)
		}
		out[k] = f
	}
	return out, nil
}

// PredictResponse names the version and route that answered.
type PredictResponse struct {
	// RequestID is the server's id of the answer (its labels name it); ClientRequestID echoes
	// the request_id the client sent, if any.
	RequestID       string    `json:"request_id"`
	ClientRequestID string    `json:"client_request_id,omitempty"`
	Model           string    `json:"model"`
	Version         int       `json:"version"`
	Route           string    `json:"route"`
	Prediction      float64   `json:"prediction"`
	Predictions     []float64 `json:"predictions,omitempty"`
	Fallback        string    `json:"fallback,omitempty"` // why a fallback answered or a feature was filled in
	// Features says which features came from the online store and how old they were.
	Features *predlog.FeatureProvenance `json:"features,omitempty"`
	// LabelToken lets this client send the answer's ground-truth label (POST .../feedback).
	LabelToken   string         `json:"label_token,omitempty"`
	LabelTokens  []string       `json:"label_tokens,omitempty"` // one per instance of a batch
	Explanation  *Explanation   `json:"explanation,omitempty"`
	Explanations []*Explanation `json:"explanations,omitempty"`
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, ok := strings.CutSuffix(r.PathValue("action"), ":predict")
	if !ok {
		httpError(w, http.StatusNotFound, "unknown endpoint: use POST /v1/models/{name}:predict")
		return
	}
	if _, ok := s.watchers[name]; !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", name)
		return
	}
	servedModel(w, name)
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // a large batch's buffer is not kept
			bodyPool.Put(buf)
		}
	}()
	buf.Reset()
	body, code, err := readBodyInto(buf, w, r)
	if err != nil {
		httpError(w, code, "%v", err)
		return
	}
	// The common shape is parsed without reflection; anything else, errors included, by the
	// strict decoder.
	req, fast := fastDecodePredict(body)
	if !fast {
		req = PredictRequest{}
		if code, err := decodeStrictBytes(body, &req); err != nil {
			httpError(w, code, "%v", err)
			return
		}
	}
	rows, err := req.rows()
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// The id that logs the answer and binds its label token is the server's, never the
	// client's: a client choosing ids could hold several tokens for one logged request id.
	clientID := req.RequestID
	req.RequestID = randomID()
	a, err := s.Score(r.Context(), ScoreRequest{Model: name, RequestID: req.RequestID, RoutingKey: req.RoutingKey, Rows: rows,
		Explain: req.Explain, Attributes: req.Attributes, Start: start})
	if err != nil {
		answered(w, name, a.Version, a.Route)
		httpError(w, httpStatus(err), "%v", err)
		return
	}
	answered(w, name, a.Version, a.Route)
	s.finish(w, s.v1Answer(name, req, clientID, a, start))
}

// v1Answer is the answer to a scored request: one prediction, or a batch's with a label token
// per instance.
func (s *Server) v1Answer(name string, req PredictRequest, clientID string, a ScoreResult, start time.Time) PredictResponse {
	resp := PredictResponse{RequestID: req.RequestID, ClientRequestID: clientID, Model: name, Version: a.Version, Route: string(a.Route),
		Fallback: a.Fallback, LabelToken: s.labelToken(name, a.Version, req.RequestID, start)}
	if a.Features != "" {
		var p predlog.FeatureProvenance
		if json.Unmarshal([]byte(a.Features), &p) == nil {
			resp.Features = &p
		}
	}
	if req.Instances != nil {
		resp.Predictions, resp.Explanations, resp.LabelToken = a.Predictions, a.Explanations, ""
		for i := range a.Predictions {
			if tok := s.labelToken(name, a.Version, fmt.Sprintf("%s/%d", req.RequestID, i), start); tok != "" {
				resp.LabelTokens = append(resp.LabelTokens, tok)
			}
		}
	} else {
		resp.Prediction = a.Predictions[0]
		if a.Explanations != nil {
			resp.Explanation = a.Explanations[0]
		}
	}
	return resp
}

// rows are the request's records as numbers: its one record, or its batch.
func (req PredictRequest) rows() ([]map[string]float64, error) {
	switch {
	case req.numeric != nil:
		return []map[string]float64{req.numeric}, nil
	case req.Features != nil && req.Instances != nil:
		return nil, errors.New("give features (one record) or instances (a batch), not both")
	case req.Instances != nil:
		if len(req.Instances) == 0 {
			return nil, errors.New("instances: empty batch")
		}
		rows := make([]map[string]float64, 0, len(req.Instances))
		for i, inst := range req.Instances {
			x, err := numbers(inst, fmt.Sprintf("instances[%d].", i))
			if err != nil {
				return nil, err
			}
			rows = append(rows, x)
		}
		return rows, nil
	}
	x, err := numbers(req.Features, "features.")
	if err != nil {
		return nil, err
	}
	return []map[string]float64{x}, nil
}

// answerPool recycles the buffers fast-path answers are written into.
var answerPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// jsonContentType is shared by every fast-path response (never modified).
var jsonContentType = []string{"application/json"}

func (s *Server) finish(w http.ResponseWriter, resp PredictResponse) {
	buf := answerPool.Get().(*[]byte)
	defer answerPool.Put(buf)
	if b, ok := appendPredictResponse((*buf)[:0], resp); ok {
		w.Header()["Content-Type"] = jsonContentType // canonical key already: no Set
		_, _ = w.Write(b)
		if cap(b) <= 64<<10 { // keep the grown buffer unless a large batch grew it
			*buf = b
		}
	} else {
		writeJSON(w, http.StatusOK, resp)
	}
}
