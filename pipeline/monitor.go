package pipeline

import (
	"time"

	"github.com/driftline/driftline/spec"
)

// The monitor: workflow monitor/<model>, one per model (docs/monitoring.md).
const (
	MonitorWorkflow  = "Monitor"
	ActMonitorWindow = "MonitorWindow"
	// QueryMonitor returns the monitor's MonitorStatus.
	QueryMonitor = "monitor"
)

// MonitorWorkflowID is the id of a model's monitor.
func MonitorWorkflowID(model string) string { return "monitor/" + model }

// LogMark is a durable position in a log (predlog.Mark): the parts written up to it were
// taken by an earlier window.
type LogMark struct {
	WrittenNanos int64  `json:"written_nanos"`
	Key          string `json:"key"`
}

// MonitorInput starts (or continues as new) a model's monitor.
type MonitorInput struct {
	Spec spec.Spec
	// RunFrom and RunTo are the window a run the monitor starts trains on (empty: the spec's
	// window ending yesterday, as schedules use).
	RunFrom, RunTo string `json:",omitempty"`
	RequestedBy    string
	// The state carried across continue-as-new.
	Predictions, Labels LogMark
	DriftedInARow       int
	Windows             int
	LastReport          string       `json:",omitempty"`
	Runs                []MonitorRun `json:",omitempty"`
}

// MonitorRun is a run the monitor started (or found already running).
type MonitorRun struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	RunID   string    `json:"run_id,omitempty"`
	Started bool      `json:"started"` // false: a run was already in progress
}

// MonitorWindowInput is one window: the logs after the marks, up to Until minus the spec's
// settle time.
type MonitorWindowInput struct {
	Spec                spec.Spec
	Predictions, Labels LogMark
	Until               time.Time
}

// MonitorWindowResult is the window's summary; the report holds the rest.
type MonitorWindowResult struct {
	ReportURI           string
	Version             int
	Predictions, Labels LogMark
	Requests, Labelled  int
	LiveMAE             float64
	EstimatedMAE        float64 // the loss estimator's, before labels (0: none)
	EstimateBreach      bool
	DriftScore          float64
	Drifted, MAEBreach  bool
	FairnessBelowMin    bool
	Problems            int
	Why                 string // the input drift report's reason
}

// MonitorStatus is what `driftline monitor status` shows.
type MonitorStatus struct {
	Model         string               `json:"model"`
	Windows       int                  `json:"windows"`
	DriftedInARow int                  `json:"drifted_in_a_row"`
	Last          *MonitorWindowResult `json:"last,omitempty"`
	LastAt        time.Time            `json:"last_at"`
	Runs          []MonitorRun         `json:"runs,omitempty"`
}
