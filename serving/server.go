package serving

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// MaxBodyBytes bounds a request body; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Options configure a serving worker.
type Options struct {
	Store   objstore.Bucket
	Models  []string
	Poll    time.Duration
	Replica string
	// LogFlush is how often the prediction log is flushed; LogBuffer bounds it.
	LogFlush  time.Duration
	LogBuffer int
}

// Server answers predictions for a set of models.
type Server struct {
	opts     Options
	watchers map[string]*watcher
	metrics  *Metrics
	reg      *prometheus.Registry
	log      *predlog.Writer
	mux      *http.ServeMux
}

// New builds a server; Start begins following the deployment pointers.
func New(o Options) (*Server, error) {
	if o.Store == nil || len(o.Models) == 0 {
		return nil, errors.New("serving: a store and at least one model are required")
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.LogFlush <= 0 {
		o.LogFlush = 2 * time.Second
	}
	if o.LogBuffer <= 0 {
		o.LogBuffer = 65536
	}
	if o.Replica == "" {
		o.Replica = randomID()[:8]
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{opts: o, watchers: map[string]*watcher{}, metrics: NewMetrics(reg), reg: reg}
	r := registry.New(o.Store)
	for _, m := range o.Models {
		s.watchers[m] = newWatcher(m, r, s.metrics)
		s.metrics.initModel(m)
	}
	s.log = predlog.NewWriter(o.Store, o.Replica, o.LogBuffer, 5000, o.LogFlush)
	s.log.OnDrop = s.metrics.Dropped.Inc
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("POST /v1/models/{action}", s.predict)
	s.mux.HandleFunc("GET /v1/models/{name}", s.describe)
	return s, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Start polls every model's pointer once, then keeps following them until ctx is done.
func (s *Server) Start(ctx context.Context) {
	for _, name := range s.opts.Models {
		w := s.watchers[name]
		_ = w.poll(ctx)
		go w.run(ctx, s.opts.Poll)
	}
}

// Close flushes the prediction log.
func (s *Server) Close() { s.log.Close() }

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	type state struct {
		Production int    `json:"production"`
		Canary     int    `json:"canary,omitempty"`
		Error      string `json:"error,omitempty"`
	}
	out := map[string]state{}
	ok := true
	for name, wt := range s.watchers {
		t := wt.current.Load()
		st := state{}
		if t.production != nil {
			st.Production = t.production.version
		} else {
			ok = false
		}
		if t.canary != nil {
			st.Canary = t.canary.version
		}
		if e := wt.lastErr.Load(); e != nil {
			st.Error = *e
		}
		out[name] = st
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func (s *Server) describe(w http.ResponseWriter, r *http.Request) {
	wt, ok := s.watchers[r.PathValue("name")]
	if !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", r.PathValue("name"))
		return
	}
	t := wt.current.Load()
	if t.production == nil {
		httpError(w, http.StatusServiceUnavailable, "model %q has no production version loaded", wt.name)
		return
	}
	out := map[string]any{"model": wt.name, "production": t.production.version, "features": t.production.model.Features,
		"target": t.production.model.Target}
	if t.canary != nil {
		out["canary"], out["canary_share"] = t.canary.version, t.share
	}
	writeJSON(w, http.StatusOK, out)
}

// PredictRequest is the body of POST /v1/models/{name}:predict.
type PredictRequest struct {
	RequestID  string                     `json:"request_id"`
	RoutingKey string                     `json:"routing_key"`
	Features   map[string]json.RawMessage `json:"features"`
	Explain    bool                       `json:"explain"`
}

// numbers checks that every feature value is a JSON number, naming the first that is not.
func (r PredictRequest) numbers() (map[string]float64, error) {
	out := make(map[string]float64, len(r.Features))
	for k, raw := range r.Features {
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("features.%s: want a number, got %s", k, raw)
		}
		out[k] = v
	}
	return out, nil
}

// Explanation is the exact per-feature contribution (SHAP values) of the answer.
type Explanation struct {
	BaseValue     float64            `json:"base_value"`
	Contributions map[string]float64 `json:"contributions"`
}

// PredictResponse names the version and route that answered.
type PredictResponse struct {
	RequestID   string       `json:"request_id"`
	Model       string       `json:"model"`
	Version     int          `json:"version"`
	Route       string       `json:"route"`
	Prediction  float64      `json:"prediction"`
	Fallback    string       `json:"fallback,omitempty"` // why production answered a canary-routed request
	Explanation *Explanation `json:"explanation,omitempty"`
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, ok := strings.CutSuffix(r.PathValue("action"), ":predict")
	if !ok {
		httpError(w, http.StatusNotFound, "unknown endpoint: use POST /v1/models/{name}:predict")
		return
	}
	wt, ok := s.watchers[name]
	if !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", name)
		return
	}
	var req PredictRequest
	if code, err := decodeStrict(w, r, &req); err != nil {
		httpError(w, code, "%v", err)
		s.metrics.Requests.WithLabelValues(name, "", "", strconv.Itoa(code)).Inc()
		return
	}
	feats, err := req.numbers()
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		s.metrics.Requests.WithLabelValues(name, "", "", "400").Inc()
		return
	}
	if req.RequestID == "" {
		req.RequestID = randomID()
	}
	t := wt.current.Load()
	if t.production == nil {
		httpError(w, http.StatusServiceUnavailable, "model %q has no production version loaded yet", name)
		s.metrics.Requests.WithLabelValues(name, "", "", "503").Inc()
		return
	}
	resp := PredictResponse{RequestID: req.RequestID, Model: name}
	inputs, _ := json.Marshal(feats)
	if t.canary != nil && InCanary(req.RoutingKey, t.share) {
		pred, expl, err := score(t.canary.model, feats, req.Explain)
		// Latency is the server-side time from the request's arrival to its answer.
		rec := predlog.Record{RequestID: req.RequestID, TimeUnixMs: start.UnixMilli(), Model: name, Version: int32(t.canary.version),
			Route: "canary", RoutingKey: req.RoutingKey, LatencyUs: time.Since(start).Microseconds(), Prediction: pred, Inputs: string(inputs)}
		if err == nil {
			resp.Version, resp.Route, resp.Prediction, resp.Explanation = t.canary.version, "canary", pred, expl
			s.log.Add(rec)
			s.finish(w, name, resp, start)
			return
		}
		// The candidate failed: count it against the candidate, answer safely with production.
		rec.Error = err.Error()
		s.log.Add(rec)
		s.metrics.Requests.WithLabelValues(name, strconv.Itoa(t.canary.version), "canary", "error").Inc()
		resp.Fallback = "canary v" + strconv.Itoa(t.canary.version) + " failed: " + err.Error()
	}
	pred, expl, err := score(t.production.model, feats, req.Explain)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		s.metrics.Requests.WithLabelValues(name, strconv.Itoa(t.production.version), "production", "400").Inc()
		return
	}
	resp.Version, resp.Route, resp.Prediction, resp.Explanation = t.production.version, "production", pred, expl
	if resp.Fallback == "" {
		s.log.Add(predlog.Record{RequestID: req.RequestID, TimeUnixMs: start.UnixMilli(), Model: name, Version: int32(t.production.version),
			Route: "production", RoutingKey: req.RoutingKey, LatencyUs: time.Since(start).Microseconds(), Prediction: pred, Inputs: string(inputs)})
	}
	s.finish(w, name, resp, start)
}

func (s *Server) finish(w http.ResponseWriter, name string, resp PredictResponse, start time.Time) {
	writeJSON(w, http.StatusOK, resp)
	s.metrics.Requests.WithLabelValues(name, strconv.Itoa(resp.Version), resp.Route, "200").Inc()
	s.metrics.Latency.WithLabelValues(name, resp.Route).Observe(time.Since(start).Seconds())
}

func score(m *model.Model, feats map[string]float64, explain bool) (float64, *Explanation, error) {
	x, err := m.Vector(feats)
	if err != nil {
		return 0, nil, err
	}
	pred := m.Predict(x)
	if !explain {
		return pred, nil, nil
	}
	base, contrib := m.Explain(x)
	e := &Explanation{BaseValue: base, Contributions: map[string]float64{}}
	for i, f := range m.Features {
		e.Contributions[f] = contrib[i]
	}
	return pred, e, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields, trailing data and bodies over
// MaxBodyBytes, with an error that names the problem.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", MaxBodyBytes)
		case errors.As(err, &te):
			return http.StatusBadRequest, fmt.Errorf("field %q: got JSON %s, want %s", te.Field, te.Value, te.Type)
		case errors.Is(err, io.EOF):
			return http.StatusBadRequest, errors.New("empty request body")
		}
		return http.StatusBadRequest, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("invalid JSON: data after the request object")
	}
	return 0, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ListenAndServe runs the HTTP server with hardened timeouts until ctx is done, then drains
// in-flight requests.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("serving", "addr", addr, "models", slices.Clone(s.opts.Models))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	return err
}
