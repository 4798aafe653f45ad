package serving

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
)

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
	// CandidateErrors counts answers a canary or shadow candidate failed to give (production
	// answered instead, or in shadow mode the failure is only logged).
	CandidateErrors *prometheus.CounterVec
	// Feedback labels taken and refused (by reason: missing, malformed, altered, expired,
	// duplicate).
	LabelsAccepted *prometheus.CounterVec
	LabelsRefused  *prometheus.CounterVec
	// Enrichment of missing features (enrich.go).
	// Paired counts the second scorings of canary requests by result: scored, failed,
	// dropped (the queue was full; the request was answered all the same).
	Paired       *prometheus.CounterVec
	Busy         *prometheus.CounterVec
	Enrichments  *prometheus.CounterVec
	BreakerState *prometheus.GaugeVec
}

// NewMetrics builds and registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "requests_total", Help: "Prediction responses (v1 and v2, every code) by model, answering version, route and HTTP code; model, version and route are empty when the request never reached a served model."},
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
		CandidateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "candidate_errors_total", Help: "Rows a canary or shadow candidate failed to score, by model, version and route."},
			[]string{"model", "version", "route"}),
	}
	m.LabelsAccepted = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "labels_accepted_total", Help: "Feedback labels taken (their label token verified)."}, []string{"model"})
	m.LabelsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "labels_refused_total", Help: "Feedback labels refused, by reason: missing, malformed, altered, expired, duplicate."}, []string{"model", "reason"})
	m.Paired = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "paired_total", Help: "Canary requests also scored by the model that did not answer them (off the request path), by result: scored, failed, dropped."}, []string{"model", "result"})
	reg.MustRegister(m.Paired)
	m.Busy = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "busy_seconds_total", Help: "Time the requests each version answered or scored took, from arrival to logging: the process CPU is apportioned by it per model and version (deploy/prometheus/rules.yml)."},
		[]string{"model", "version"})
	reg.MustRegister(m.Busy)
	reg.MustRegister(m.Requests, m.Latency, m.Version, m.LoadErrors, m.Dropped, m.CandidateErrors, m.LabelsAccepted, m.LabelsRefused)
	newEnrichmentMetrics(reg, m)
	return m
}

func (m *Metrics) initModel(model string) {
	for _, role := range []string{string(pipeline.RouteProduction), string(pipeline.RouteCanary)} {
		m.Version.WithLabelValues(model, role)
		m.Latency.WithLabelValues(model, role)
	}
	m.LoadErrors.WithLabelValues(model)
	for _, r := range []string{"scored", "failed", "dropped"} {
		m.Paired.WithLabelValues(model, r)
	}
	m.LabelsAccepted.WithLabelValues(model)
	for _, r := range []string{predlog.RefusedMissing, predlog.RefusedMalformed, predlog.RefusedAltered, predlog.RefusedExpired, predlog.RefusedDuplicate, predlog.RefusedOutOfRange} {
		m.LabelsRefused.WithLabelValues(model, r)
	}
}
