package serving

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/pipeline"
)

// responseRecorder remembers a response's status code and the labels the handler learned
// (which model, version and route answered), for the one metrics middleware.
type responseRecorder struct {
	http.ResponseWriter
	code    int
	model   string // empty until the handler knows the model is one this worker serves
	version int
	route   pipeline.Route
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var recorderPool = sync.Pool{New: func() any { return new(responseRecorder) }}

// answered records which model, version and route answered, when w is the middleware's
// recorder (it always is behind instrument).
func answered(w http.ResponseWriter, model string, version int, route pipeline.Route) {
	if rr, ok := w.(*responseRecorder); ok {
		rr.model, rr.version, rr.route = model, version, route
	}
}

// servedModel records the model a request is for, once it is known to be served here (so
// unknown names from clients never become metric series).
func servedModel(w http.ResponseWriter, model string) {
	if rr, ok := w.(*responseRecorder); ok {
		rr.model = model
	}
}

// instrument counts every response of a prediction endpoint, whatever its code, in
// requests_total{model,version,route,code}, and observes the latency of answered requests,
// as client_golang's promhttp instrumentation does for a whole handler.
func (s *Server) instrument(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rr := recorderPool.Get().(*responseRecorder)
		*rr = responseRecorder{ResponseWriter: w}
		next(rr, r)
		if rr.code == 0 {
			rr.code = http.StatusOK
		}
		o := s.series(seriesKey{rr.model, rr.version, rr.route, rr.code})
		o.requests.Inc()
		if o.latency != nil {
			o.latency.Observe(time.Since(start).Seconds())
		}
		*rr = responseRecorder{}
		recorderPool.Put(rr)
	}
}

// okSeries are the metric children of one label set, looked up once instead of hashing label
// values on every request.
type okSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer // answered requests only
}

// seriesKey names a label set (a struct: no string to build per request).
type seriesKey struct {
	model   string
	version int
	route   pipeline.Route
	code    int
}

func (s *Server) series(key seriesKey) okSeries {
	s.seriesMu.RLock()
	o, ok := s.seriesCache[key]
	s.seriesMu.RUnlock()
	if ok {
		return o
	}
	version := ""
	if key.version > 0 {
		version = strconv.Itoa(key.version)
	}
	o = okSeries{requests: s.metrics.Requests.WithLabelValues(key.model, version, string(key.route), strconv.Itoa(key.code))}
	if key.code == http.StatusOK && key.route != "" {
		o.latency = s.metrics.Latency.WithLabelValues(key.model, string(key.route))
	}
	s.seriesMu.Lock()
	if s.seriesCache == nil {
		s.seriesCache = map[seriesKey]okSeries{}
	}
	s.seriesCache[key] = o
	s.seriesMu.Unlock()
	return o
}
