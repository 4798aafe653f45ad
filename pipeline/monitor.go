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
	// UpdateAcknowledge decides the monitor's open fairness review (ReviewAck).
	UpdateAcknowledge = "acknowledge"
	ActNotifyReview   = "NotifyReview"
	ActRecordReview   = "RecordReview"
	ActReviewRollback = "ReviewRollback"
)

// The decisions a fairness review takes.
const (
	ReviewAccept   = "accept"   // the disparity is understood and accepted: nothing changes
	ReviewRetrain  = "retrain"  // start the model's loop (ct/<model>)
	ReviewRollback = "rollback" // roll production back to the version before it
)

// FairnessReview is the human review a fairness breach opens: it stays open until someone
// who may approve the model acknowledges it with an attested decision; unacknowledged after
// monitoring.review_timeout it escalates (once).
type FairnessReview struct {
	ID        string    `json:"id"` // fairness-<window end>
	Model     string    `json:"model"`
	Version   int       `json:"version"` // the production version the window judged
	OpenedAt  time.Time `json:"opened_at"`
	Deadline  time.Time `json:"deadline"` // escalation, unless acknowledged before
	Report    string    `json:"report"`   // the window's report
	Attribute string    `json:"attribute"`
	// DisparateImpact is the window's estimate with its interval, and the spec's floor.
	DisparateImpact float64 `json:"disparate_impact"`
	Low             float64 `json:"low"`
	High            float64 `json:"high"`
	Floor           float64 `json:"floor"`
	// Reviewers may acknowledge (the RBAC subjects with approve on the model); EscalateTo is
	// who the escalation adds (monitoring.escalate_to).
	Reviewers  []string `json:"reviewers"`
	EscalateTo []string `json:"escalate_to,omitempty"`
	// Keys verify the acknowledgement's attestation (the control-plane API's).
	Keys        []AttestationKey `json:"keys,omitempty"`
	Escalated   bool             `json:"escalated"`
	EscalatedAt time.Time        `json:"escalated_at,omitzero"`
	// The acknowledgement, when decided.
	Decision      string    `json:"decision,omitempty"`
	By            string    `json:"by,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	DecidedAt     time.Time `json:"decided_at,omitzero"`
	AttestationID string    `json:"attestation_id,omitempty"`
	Outcome       string    `json:"outcome,omitempty"` // what the decision did
}

// ReviewAck is the acknowledge Update's request: the decision on the open review, with the
// control-plane API's attestation of who takes it (what the caller claims besides is ignored).
type ReviewAck struct {
	Review      string `json:"review"`
	Decision    string `json:"decision"` // accept, retrain or rollback
	Reason      string `json:"reason"`
	Attestation string `json:"attestation"`
}

// ReviewNotice is the NotifyReview activity's input: a review opened, escalated or closed.
type ReviewNotice struct {
	Review FairnessReview
	Event  string // opened, escalated, closed
}

// ReviewRollbackInput rolls production back for a review's decision.
type ReviewRollbackInput struct {
	Model, Review, Actor, Reason string
	// Attestation is the acknowledgement the monitor took and Origin the monitor's own: the
	// activity verifies both with the worker's keys before it touches production.
	Attestation, Origin string `json:",omitempty"`
	// FromVersion is the production version the review judged: the rollback happens only
	// while it is still production.
	FromVersion int
}

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
	// Origin is the control-plane API's attestation that it started this monitor (kind
	// monitor): the runs the monitor starts carry it, and its acts on production (a review's
	// rollback) are refused without it.
	Origin string `json:",omitempty"`
	// The state carried across continue-as-new.
	Predictions, Labels LogMark
	DriftedInARow       int
	Windows             int
	LastReport          string       `json:",omitempty"`
	Runs                []MonitorRun `json:",omitempty"`
	// Review is the open fairness review (nil: none); Reviews the last 20 closed ones.
	Review  *FairnessReview  `json:",omitempty"`
	Reviews []FairnessReview `json:",omitempty"`
	// Partition is the last closed partition signalled (SignalNewPartition); Pending says its
	// window has not run yet (a signal that came as the run continued as new).
	Partition *NewPartition `json:",omitempty"`
	Pending   bool          `json:",omitempty"`
}

// SignalNewPartition tells a model's monitor that a partition of fresh data closed (the
// ingest worker's trigger action monitor): the next window runs at once instead of at the
// end of the interval.
const SignalNewPartition = "new-partition"

// NewPartition is the signal's payload.
type NewPartition struct {
	Dataset string    `json:"dataset"`
	Day     string    `json:"day"`
	By      string    `json:"by"` // the ingest group
	At      time.Time `json:"at"`
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
	ReportURI    string  `json:"report_uri"`
	Version      int     `json:"version"`
	Predictions  LogMark `json:"predictions"`
	Labels       LogMark `json:"labels"`
	Requests     int     `json:"requests"`
	Labelled     int     `json:"labelled"`
	LiveMAE      float64 `json:"live_mae"`
	EstimatedMAE float64 `json:"estimated_mae"` // the loss estimator's, before labels (0: none)
	// EstimatedAccuracy and LiveAccuracy are a classifier's (CBPE before labels; 0: none).
	EstimatedAccuracy       float64 `json:"estimated_accuracy"`
	LiveAccuracy            float64 `json:"live_accuracy"`
	AccuracyBreach          bool    `json:"accuracy_breach"`
	EstimatedAccuracyBreach bool    `json:"estimated_accuracy_breach"`
	EstimateBreach          bool    `json:"estimate_breach"`
	DriftScore              float64 `json:"drift_score"`
	Drifted                 bool    `json:"drifted"`
	MAEBreach               bool    `json:"mae_breach"`
	FairnessBelowMin        bool    `json:"fairness_below_min"`
	// DisparateImpact and its interval (0 when fairness was not computed).
	DisparateImpact     float64 `json:"disparate_impact"`
	DisparateImpactLow  float64 `json:"disparate_impact_low"`
	DisparateImpactHigh float64 `json:"disparate_impact_high"`
	Problems            int     `json:"problems"`
	Why                 string  `json:"why"` // the input drift report's reason
	// Fleets are the model's fleets' input drift, from their devices' sketches of the window:
	// a drifted fleet makes the window drifted.
	Fleets []FleetDrift `json:"fleets,omitempty"`
}

// FleetDrift is one fleet's input drift in a monitoring window.
type FleetDrift struct {
	Fleet       string  `json:"fleet"`
	Version     int     `json:"version"`
	Sketches    int     `json:"sketches"`
	Predictions uint64  `json:"predictions"`
	Skipped     int     `json:"skipped,omitempty"` // sketches of other bins (another version's)
	Score       float64 `json:"score"`
	Drifted     bool    `json:"drifted"`
	Why         string  `json:"why,omitempty"`
}

// MonitorStatus is what `driftline monitor status` shows.
type MonitorStatus struct {
	Model         string               `json:"model"`
	Windows       int                  `json:"windows"`
	DriftedInARow int                  `json:"drifted_in_a_row"`
	Last          *MonitorWindowResult `json:"last,omitempty"`
	LastAt        time.Time            `json:"last_at"`
	Runs          []MonitorRun         `json:"runs,omitempty"`
	Review        *FairnessReview      `json:"review,omitempty"`
	Reviews       []FairnessReview     `json:"reviews,omitempty"`
	// Partition is the last closed partition signalled by an ingest worker.
	Partition *NewPartition `json:"partition,omitempty"`
}
