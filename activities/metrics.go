package activities

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/pipeline"
)

// Metric namespace and subsystem of the pipeline worker.
const (
	Namespace = "driftline"
	Subsystem = "pipeline"
)

// Metrics are the pipeline's Prometheus metrics, registered on a caller's registry.
type Metrics struct {
	Runs         *prometheus.CounterVec
	StepDuration *prometheus.HistogramVec
	// StepCPU is the worker process's CPU time while each step ran (the cost of a run is the
	// sum over its steps; with steps of several runs at once each counts the others' too).
	StepCPU      *prometheus.CounterVec
	DriftPSI     *prometheus.GaugeVec
	DriftKS      *prometheus.GaugeVec
	DriftScore   *prometheus.GaugeVec
	MAE          *prometheus.GaugeVec
	RowsRead     *prometheus.CounterVec
	RowsRejected *prometheus.CounterVec
	// RunCPU is a finished run's CPU-seconds (RunCost), by model and the version it
	// registered ("0": none).
	RunCPU *prometheus.GaugeVec
	// ScheduleToStart is how long each activity attempt waited in its task queue for a worker
	// slot, by task queue and step: the sign that a worker kind needs more replicas.
	ScheduleToStart *prometheus.HistogramVec
}

// NewMetrics builds and registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "runs_total", Help: "Continuous-training runs finished, by model and outcome."}, []string{"model", "outcome"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "step_duration_seconds", Help: "Duration of each activity execution, by step and result.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 12)}, []string{"step", "result"}),
		StepCPU: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "step_cpu_seconds_total", Help: "CPU seconds of the pipeline worker process while each step ran, by step."}, []string{"step"}),
		DriftPSI: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "drift_psi", Help: "Population Stability Index of the last drift check, per feature."}, []string{"model", "feature"}),
		DriftKS: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "drift_ks_statistic", Help: "Kolmogorov-Smirnov statistic of the last drift check, per feature."}, []string{"model", "feature"}),
		DriftScore: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "drift_score", Help: "Overall drift score (largest PSI) of the last drift check."}, []string{"model"}),
		MAE: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "holdout_mae", Help: "Holdout MAE of the last evaluation, for the candidate and the champion."}, []string{"model", "role"}),
		RowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "validation_rows_read_total", Help: "Rows read by the validate step."}, []string{"dataset"}),
		RowsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "validation_rows_quarantined_total", Help: "Rows quarantined by the validate step."}, []string{"dataset"}),
		RunCPU: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "run_cpu_seconds", Help: "CPU seconds of the last finished run of each model and version it registered (0: none), summed over its steps' attempts."}, []string{"model", "version"}),
		ScheduleToStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: Subsystem,
			Name: "schedule_to_start_seconds", Help: "Time each activity's first attempt waited in its task queue before a worker started it, by task queue and step.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}, []string{"task_queue", "step"}),
	}
	reg.MustRegister(m.Runs, m.StepDuration, m.StepCPU, m.DriftPSI, m.DriftKS, m.DriftScore, m.MAE, m.RowsRead, m.RowsRejected, m.RunCPU, m.ScheduleToStart)
	return m
}

// InitModel pre-initialises the label values of one model.
func (m *Metrics) InitModel(model string) {
	if m == nil {
		return
	}
	for _, o := range pipeline.Outcomes { // pre-initialised so dashboards see zeros
		m.Runs.WithLabelValues(model, string(o))
	}
}
