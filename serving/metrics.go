// Package serving is the serving worker: it follows each model's deployment pointer, loads
// the production and canary versions from the registry, routes the canary share by a stable
// hash of the routing key and answers predictions over HTTP.
package serving

import "github.com/prometheus/client_golang/prometheus"

// Metric namespace and subsystem of the serving worker.
const (
	Namespace = "driftline"
	Subsystem = "serving"
)

// Metrics are the serving worker's Prometheus metrics.
type Metrics struct {
	Requests   *prometheus.CounterVec
	Latency    *prometheus.HistogramVec
	Version    *prometheus.GaugeVec
	LoadErrors *prometheus.CounterVec
	Dropped    prometheus.Counter
	// Enrichment of missing features (enrich.go).
	Enrichments  *prometheus.CounterVec
	BreakerState *prometheus.GaugeVec
}

// NewMetrics builds and registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "requests_total", Help: "Prediction requests by model, answering version, route and HTTP code."},
			[]string{"model", "version", "route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "request_duration_seconds", Help: "Prediction latency by model and route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"model", "route"}),
		Version: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "model_version", Help: "Loaded version per model and role (production, canary); 0 when none."}, []string{"model", "role"}),
		LoadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "model_load_errors_total", Help: "Failed loads of a deployment change; the previous models keep serving."}, []string{"model"}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "prediction_log_dropped_total", Help: "Prediction log records dropped because the buffer was full."}),
	}
	reg.MustRegister(m.Requests, m.Latency, m.Version, m.LoadErrors, m.Dropped)
	newEnrichmentMetrics(reg, m)
	return m
}

func (m *Metrics) initModel(model string) {
	for _, role := range []string{"production", "canary"} {
		m.Version.WithLabelValues(model, role)
		m.Latency.WithLabelValues(model, role)
	}
	m.LoadErrors.WithLabelValues(model)
}
