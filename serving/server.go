package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/driftline/driftline/internal/budget"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// Options configure a serving worker.
type Options struct {
	// DrainDelay is how long a replica told to stop (its context done: SIGTERM) keeps
	// answering while its readiness says it is draining, so the load balancer stops sending
	// to it before it stops listening (Kubernetes removes a terminating pod from its
	// endpoints a moment after SIGTERM); then in-flight requests finish (at most 10 s).
	// 0: none.
	DrainDelay time.Duration
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
	draining  atomic.Bool
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
	// The first load of every model, several at once (reading is I/O, decoding a core's work):
	// a replica of many models is ready in the time of the largest share, not of the sum.
	var wg sync.WaitGroup
	sem := make(chan struct{}, loadParallelism)
	for _, name := range s.opts.Models {
		w := s.watchers[name]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = w.poll(ctx)
		}()
	}
	wg.Wait()
	for _, name := range s.opts.Models {
		go s.watchers[name].run(ctx, s.opts.Poll)
	}
	s.pairDone = make(chan struct{})
	go func() {
		defer close(s.pairDone)
		s.pairWorker(ctx)
	}()
}

// loadParallelism is how many models a starting replica loads at once.
const loadParallelism = 8

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
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"draining": true})
		return
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

// Drain marks the replica as stopping: readiness (REST /readyz, /v2/health/ready, gRPC
// ServerReady) answers not ready, requests are still answered.
func (s *Server) Drain() { s.draining.Store(true) }

// DrainDelay is the configured delay between Drain and closing the listeners.
func (s *Server) DrainDelay() time.Duration { return s.opts.DrainDelay }

// ListenAndServe runs the HTTP server with hardened timeouts until ctx is done; then it
// drains: readiness fails at once, requests are answered for DrainDelay, and the requests in
// flight when the listener closes finish (at most 10 s).
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
	s.Drain()
	slog.Info("draining", "addr", addr, "for", s.opts.DrainDelay)
	select {
	case err := <-errc:
		return err
	case <-time.After(s.opts.DrainDelay):
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	return err
}
