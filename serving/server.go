package serving

import (
	"bytes"
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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/driftline/driftline/internal/budget"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// MaxBodyBytes bounds a request body; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Options configure a serving worker.
type Options struct {
	// Tracing makes every request a span (otelhttp, otelgrpc; a tracer provider is installed:
	// internal/telemetry). Off, a client's traceparent still names the request's trace in
	// X-Trace-Id and the prediction log, at no cost to requests without one (the span
	// machinery costs about a fifth of the throughput, measured with bench/serve.sh).
	Tracing bool
	Store   objstore.Bucket
	Models  []string
	Poll    time.Duration
	Replica string
	// LogFlush is how often the prediction log is flushed; LogBuffer bounds it.
	LogFlush  time.Duration
	LogBuffer int
	// Enrich fills in features requests do not carry (optional).
	Enrich []*Enricher
	// Features fills a feature service's features from the online store (optional).
	Features *FeatureFiller
	// LabelKey signs the label token of every answer; feedback needs a valid one
	// (predlog.LabelToken). Without a key the feedback endpoint refuses every label.
	LabelKey []byte
	// LabelTTL is how long after an answer its label is taken (default 7 days).
	LabelTTL time.Duration
	// MaxRows, MaxValues and MaxExplainRows bound one request: rows, values over all of its
	// input tensors (checked from the shapes before anything is allocated), and rows with
	// explanations. Over a limit: 413 / RESOURCE_EXHAUSTED naming it. Defaults 10,000, 2^20, 1,000.
	MaxRows, MaxValues, MaxExplainRows int
	// BodyBudget bounds the bytes of all request bodies being read and decoded at once
	// (default 256 MiB): over it a request waits for nothing and gets 503 with Retry-After.
	BodyBudget int64
}

// Server answers predictions for a set of models.
type Server struct {
	opts        Options
	watchers    map[string]*watcher
	metrics     *Metrics
	reg         *prometheus.Registry
	log         *predlog.Writer[predlog.Record]
	labels      *predlog.Writer[predlog.Label]
	mux         *http.ServeMux
	traced      http.Handler  // mux in a server span per request
	budget      *budget.Bytes // requests being read and decoded, REST and gRPC together
	seriesMu    sync.RWMutex
	seriesCache map[seriesKey]okSeries
	seen        *seenTokens
	pairs       chan pairJob
	// stopPairs ends the paired-scoring worker (Close); pairDone is closed when it has.
	stopPairs chan struct{}
	pairDone  chan struct{}
	closing   sync.Once
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
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.BodyBudget <= 0 {
		o.BodyBudget = DefaultBodyBudget
	}
	if o.MaxValues <= 0 {
		o.MaxValues = DefaultMaxValues
	}
	if o.MaxExplainRows <= 0 {
		o.MaxExplainRows = DefaultMaxExplainRows
	}
	if o.LabelTTL <= 0 {
		o.LabelTTL = 7 * 24 * time.Hour
	}
	if len(o.LabelKey) > 0 && len(o.LabelKey) < predlog.LabelKeyBytes {
		return nil, fmt.Errorf("serving: the label key has %d bytes, want at least %d", len(o.LabelKey), predlog.LabelKeyBytes)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{opts: o, watchers: map[string]*watcher{}, metrics: NewMetrics(reg), reg: reg, seen: newSeenTokens(o.LabelTTL)}
	r := registry.New(o.Store)
	for _, m := range o.Models {
		s.watchers[m] = newWatcher(m, r, s.metrics)
		s.metrics.initModel(m)
	}
	s.log = predlog.NewWriter(o.Store, o.Replica, o.LogBuffer, 5000, o.LogFlush)
	s.log.OnDrop = s.metrics.Dropped.Inc
	for _, e := range o.Enrich {
		e.init(s.metrics)
	}
	if o.Features != nil {
		if err := o.Features.init(s.metrics); err != nil {
			return nil, err
		}
	}
	s.pairs = make(chan pairJob, pairQueue)
	s.stopPairs = make(chan struct{})
	s.labels = predlog.NewLabelWriter(o.Store, o.Replica, o.LogBuffer, 5000, o.LogFlush)
	s.labels.OnDrop = s.metrics.Dropped.Inc
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("POST /v1/models/{action}", s.instrument(s.predict))
	s.mux.HandleFunc("GET /v1/models/{name}", s.describe)
	s.mux.HandleFunc("POST /v1/models/{name}/feedback", s.feedback)
	s.mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	})
	s.mux.HandleFunc("GET /v2/health/ready", s.v2Ready)
	s.mux.HandleFunc("GET /v2/models/{name}", s.v2Metadata)
	s.mux.HandleFunc("GET /v2/models/{name}/ready", s.v2ModelReady)
	s.mux.HandleFunc("POST /v2/models/{name}/infer", s.instrument(s.v2Infer))
	s.mux.HandleFunc("GET /v2", s.v2Server)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.v2Metadata)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.v2ModelReady)
	s.mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.instrument(s.v2Infer))
	s.budget = budget.New(o.BodyBudget)
	s.traced = tracedHandler(budgeted(s.budget, s.mux), o.Tracing)
	return s, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.traced }

// tracer names the serving worker's own spans (the online store's reads).
var tracer = otel.Tracer("github.com/driftline/driftline/serving")

// tracedHandler makes every request a server span (a W3C traceparent from the client is its
// parent) and answers with the trace id in X-Trace-Id; without tracing only a request that
// carries a traceparent gets its trace id (no span).
func tracedHandler(mux http.Handler, tracing bool) http.Handler {
	if !tracing {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("traceparent") != "" {
				ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
				if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
					w.Header().Set("X-Trace-Id", sc.TraceID().String())
					r = r.WithContext(ctx)
				}
			}
			mux.ServeHTTP(w, r)
		})
	}
	withID := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			w.Header().Set("X-Trace-Id", sc.TraceID().String())
		}
		mux.ServeHTTP(w, r)
	})
	return otelhttp.NewHandler(withID, "serving", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return "serving " + r.Method + " " + r.URL.Path
	}))
}

// Start polls every model's pointer once, then keeps following them until ctx is done.
func (s *Server) Start(ctx context.Context) {
	for _, name := range s.opts.Models {
		w := s.watchers[name]
		_ = w.poll(ctx)
		go w.run(ctx, s.opts.Poll)
	}
	s.pairDone = make(chan struct{})
	go func() {
		defer close(s.pairDone)
		s.pairWorker(ctx)
	}()
}

// Close flushes the prediction log and the feedback labels.
// The paired-scoring worker is stopped first: it writes to the log.
func (s *Server) Close() {
	s.closing.Do(func() { close(s.stopPairs) })
	if s.pairDone != nil {
		<-s.pairDone
	}
	s.log.Close()
	s.labels.Close()
}

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

// Explanation is the exact per-feature contribution (SHAP values) of the answer.
type Explanation struct {
	BaseValue     float64            `json:"base_value"`
	Contributions map[string]float64 `json:"contributions"`
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

// ScoreRequest is one request to the scoring core, whatever front end it came through.
type ScoreRequest struct {
	Model, RequestID, RoutingKey string
	Rows                         []map[string]float64
	Explain                      bool
	// Attributes are logged with the prediction, not used by the model (the protected
	// attribute the canary checks) and fill enrichment URLs (the region of the weather).
	Attributes map[string]string
	Start      time.Time
	// Version pins the request to the production or the canary version (a /versions/{v}/
	// path): that version alone answers, with no canary split; 0 routes as usual.
	Version int
}

// ScoreResult is the scoring core's answer.
type ScoreResult struct {
	Version      int
	Route        pipeline.Route
	Predictions  []float64
	Explanations []*Explanation
	Fallback     string // why a fallback answered or a feature was filled in
	Features     string // where the feature store's values came from (predlog.FeatureProvenance JSON)
}

// ErrorKind is what went wrong with a request, for the front end to map to its status.
type ErrorKind int

// The kinds of scoring error.
const (
	ErrBadInput     ErrorKind = iota + 1 // the request is malformed (400, INVALID_ARGUMENT)
	ErrUnknownModel                      // the model is not served here (404, NOT_FOUND)
	ErrNotReady                          // no production version loaded yet (503, UNAVAILABLE)
	ErrTooLarge                          // over a size limit, named in the message (413, RESOURCE_EXHAUSTED)
)

// Default size limits of one request (Options.MaxRows, MaxValues, MaxExplainRows).
const (
	DefaultMaxRows        = 10000
	DefaultMaxValues      = 1 << 20
	DefaultMaxExplainRows = 1000
)

// ScoreError is a typed scoring error; its message names what was wrong.
type ScoreError struct {
	Kind ErrorKind
	Msg  string
}

func (e *ScoreError) Error() string { return e.Msg }

func scoreErr(kind ErrorKind, format string, args ...any) error {
	return &ScoreError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// httpStatus maps an error of the scoring core to its HTTP status.
func httpStatus(err error) int {
	var se *ScoreError
	if errors.As(err, &se) {
		switch se.Kind {
		case ErrUnknownModel:
			return http.StatusNotFound
		case ErrNotReady:
			return http.StatusServiceUnavailable
		case ErrTooLarge:
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// Score scores rows for a model: canary or shadow by the routing key, production otherwise,
// with production answering when the candidate fails. Every scored row is logged. Enrichment
// runs under ctx (the request's), so a client that goes away stops it.
func (s *Server) Score(ctx context.Context, req ScoreRequest) (ScoreResult, error) {
	wt, ok := s.watchers[req.Model]
	if !ok {
		return ScoreResult{}, scoreErr(ErrUnknownModel, "unknown model %q", req.Model)
	}
	t := wt.current.Load()
	if t.production == nil {
		return ScoreResult{}, scoreErr(ErrNotReady, "model %q has no production version loaded yet", req.Model)
	}
	if req.Version != 0 {
		switch {
		case req.Version == t.production.version:
			t = &table{production: t.production} // production alone: no split, no pairing
		case t.canary != nil && req.Version == t.canary.version:
			t = &table{production: t.canary, pinned: true}
		default:
			return ScoreResult{}, scoreErr(ErrUnknownModel, "model %q version %d is not served here", req.Model, req.Version)
		}
	}
	rows, start := req.Rows, req.Start
	switch {
	case len(rows) > s.opts.MaxRows:
		return ScoreResult{}, scoreErr(ErrTooLarge, "%d rows: a request holds at most %d (serve --max-rows)", len(rows), s.opts.MaxRows)
	case req.Explain && len(rows) > s.opts.MaxExplainRows:
		return ScoreResult{}, scoreErr(ErrTooLarge, "%d rows to explain: a request explains at most %d (serve --max-explain-rows)", len(rows), s.opts.MaxExplainRows)
	}
	var enrichNote []string
	for _, e := range s.opts.Enrich {
		note, err := e.Fill(ctx, req.Model, rows, req.Attributes)
		if err != nil {
			return ScoreResult{}, scoreErr(ErrBadInput, "%v", err)
		}
		if note != "" {
			enrichNote = append(enrichNote, note)
		}
	}
	provenance := ""
	if f := s.opts.Features; f != nil {
		uses := func(name string) bool {
			return slices.Contains(t.production.model.Features, name) || (t.canary != nil && slices.Contains(t.canary.model.Features, name))
		}
		fctx, span := tracer.Start(ctx, "online store: feature service")
		note, prov, err := f.Fill(fctx, req.Model, uses, rows, req.Attributes)
		if err != nil {
			span.RecordError(err)
		}
		span.End()
		if err != nil {
			return ScoreResult{}, scoreErr(ErrBadInput, "%v", err)
		}
		if note != "" {
			enrichNote = append(enrichNote, note)
		}
		if prov != nil {
			b, _ := json.Marshal(prov)
			provenance = string(b)
		}
	}
	enriched := strings.Join(enrichNote, "; ")
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID = sc.TraceID().String()
	}
	attrJSON := ""
	if len(req.Attributes) > 0 {
		b, _ := json.Marshal(req.Attributes)
		attrJSON = string(b)
	}
	logRows := func(l *loaded, route pipeline.Route, preds []float64, errMsg, fallback string) {
		if l.busy != nil {
			l.busy.Add(time.Since(start).Seconds())
		}
		for i, x := range rows {
			inputs := l.keys.append(make([]byte, 0, 128), x)
			id := req.RequestID
			if len(rows) > 1 {
				id = fmt.Sprintf("%s/%d", req.RequestID, i)
			}
			rec := predlog.Record{RequestID: id, TimeUnixMs: start.UnixMilli(), Model: req.Model, Version: int32(l.version), Route: string(route),
				RoutingKey: req.RoutingKey, LatencyUs: time.Since(start).Microseconds(), Error: errMsg, Inputs: string(inputs),
				Attributes: attrJSON, Fallback: joinNotes(fallback, enriched), Features: provenance, TraceID: traceID}
			if preds != nil {
				rec.Prediction = preds[i]
			}
			s.log.Add(rec)
		}
	}
	var fallback string
	pair := t.canary != nil && inPairs(req.RequestID, t.paired)
	if t.canary != nil && InCanary(req.RoutingKey, t.share) {
		route := pipeline.RouteCanary
		if t.shadow {
			route = pipeline.RouteShadow
		}
		preds, expl, err := scoreAll(t.canary.model, rows, req.Explain)
		switch {
		case err == nil && !t.shadow:
			logRows(t.canary, route, preds, "", "")
			if pair { // production's answer to the same request, off the request path
				s.pair(pairJob{model: req.Model, l: t.production, rows: rows, id: req.RequestID, at: start, key: req.RoutingKey, attrs: attrJSON})
			}
			return ScoreResult{Version: t.canary.version, Route: route, Predictions: preds, Explanations: expl, Fallback: enriched, Features: provenance}, nil
		case err == nil:
			logRows(t.canary, route, preds, "", "")
			pair = false // shadow: both models answered this request on its path
		default:
			// The candidate failed: count it against the candidate, answer with production.
			logRows(t.canary, route, nil, err.Error(), "")
			s.metrics.CandidateErrors.WithLabelValues(req.Model, strconv.Itoa(t.canary.version), string(route)).Inc()
			if !t.shadow {
				fallback = string(route) + " v" + strconv.Itoa(t.canary.version) + " failed: " + err.Error()
			}
		}
	}
	route := pipeline.RouteProduction
	if t.pinned {
		route = pipeline.RoutePinned
	}
	preds, expl, err := scoreAll(t.production.model, rows, req.Explain)
	if err != nil {
		return ScoreResult{Version: t.production.version, Route: route}, scoreErr(ErrBadInput, "%v", err)
	}
	if fallback == "" {
		logRows(t.production, route, preds, "", "")
		if pair { // the candidate's answer to the same request, off the request path
			s.pair(pairJob{model: req.Model, l: t.canary, rows: rows, id: req.RequestID, at: start, key: req.RoutingKey, attrs: attrJSON})
		}
	}
	return ScoreResult{Version: t.production.version, Route: route, Predictions: preds, Explanations: expl,
		Fallback: joinNotes(fallback, enriched), Features: provenance}, nil
}

// joinNotes joins two fallback notes with "; ", either may be empty (no allocation then).
func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// inputKeys are feature names in order with each one's JSON key ("name":) written once.
type inputKeys struct {
	order  []string
	quoted [][]byte
}

func newInputKeys(order []string) inputKeys {
	k := inputKeys{order: order}
	for _, name := range order {
		k.quoted = append(k.quoted, append(strconv.AppendQuote(nil, name), ':'))
	}
	return k
}

// append writes a row's features as a JSON object without reflection (this runs on every
// request): the keys in order first, then any others sorted.
func (k inputKeys) append(b []byte, x map[string]float64) []byte {
	b = append(b, '{')
	n := 0
	for i, name := range k.order {
		if v, ok := x[name]; ok {
			b = appendField(b, n, k.quoted[i], v)
			n++
		}
	}
	if n < len(x) {
		var rest []string
		for name := range x {
			if !slices.Contains(k.order, name) {
				rest = append(rest, name)
			}
		}
		slices.Sort(rest)
		for _, name := range rest {
			b = appendField(b, n, append(strconv.AppendQuote(nil, name), ':'), x[name])
			n++
		}
	}
	return append(b, '}')
}

// appendField writes the n-th field of an object: its key (quoted, with the colon) and value.
func appendField(b []byte, n int, key []byte, v float64) []byte {
	if n > 0 {
		b = append(b, ',')
	}
	return strconv.AppendFloat(append(b, key...), v, 'g', -1, 64)
}

func scoreAll(m *model.Model, rows []map[string]float64, explain bool) ([]float64, []*Explanation, error) {
	preds := make([]float64, len(rows))
	var expl []*Explanation
	for i, r := range rows {
		p, e, err := score(m, r, explain)
		if err != nil {
			if len(rows) > 1 {
				return nil, nil, fmt.Errorf("instance %d: %w", i, err)
			}
			return nil, nil, err
		}
		preds[i] = p
		if explain {
			expl = append(expl, e)
		}
	}
	return preds, expl, nil
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
	var rows []map[string]float64
	switch {
	case req.numeric != nil:
		rows = append(rows, req.numeric)
	case req.Features != nil && req.Instances != nil:
		httpError(w, http.StatusBadRequest, "give features (one record) or instances (a batch), not both")
		return
	case req.Instances != nil:
		for i, inst := range req.Instances {
			x, err := numbers(inst, fmt.Sprintf("instances[%d].", i))
			if err != nil {
				httpError(w, http.StatusBadRequest, "%v", err)
				return
			}
			rows = append(rows, x)
		}
	default:
		x, err := numbers(req.Features, "features.")
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		rows = append(rows, x)
	}
	if len(rows) == 0 {
		httpError(w, http.StatusBadRequest, "instances: empty batch")
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
	s.finish(w, resp)
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

// readBody reads a request body of at most MaxBodyBytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	return readBodyInto(new(bytes.Buffer), w, r)
}

// bodyPool recycles predict request buffers: decoding copies what it keeps out of the body.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBodyInto reads the body into buf (the result aliases it).
func readBodyInto(buf *bytes.Buffer, w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	b := buf.Bytes()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %v", err)
	}
	return b, 0, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields, trailing data and bodies over
// MaxBodyBytes, with an error that names the problem.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	b, code, err := readBody(w, r)
	if err != nil {
		return code, err
	}
	return decodeStrictBytes(b, v)
}

func decodeStrictBytes(b []byte, v any) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
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

// randomID is an unguessable request id (128 random bits): a label token binds its label to
// it, and nobody should be able to name another client's request.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// labelToken is the answer's label token ("" without a label key).
func (s *Server) labelToken(model string, version int, requestID string, at time.Time) string {
	if len(s.opts.LabelKey) == 0 {
		return ""
	}
	return predlog.LabelToken(s.opts.LabelKey, model, version, requestID, at)
}

// ListenAndServe runs the HTTP server with hardened timeouts until ctx is done, then drains
// in-flight requests.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: s.traced, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
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
