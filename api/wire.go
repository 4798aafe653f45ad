package api

import (
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/pipeline"
)

// The answers of the API's routes, one type per shape (the requests are next to their
// handlers, the reads in reads.go). Every refusal and failure answers ErrorResponse.

// ErrorResponse is the body of every answer that is not 200.
type ErrorResponse struct {
	Error string `json:"error"`
}

// RunStarted answers POST /v1/runs.
type RunStarted struct {
	WorkflowID  string `json:"workflow_id"`
	RunID       string `json:"run_id"`
	RequestedBy string `json:"requested_by"`
	SpecVersion int    `json:"spec_version"`
}

// RunCancelled answers POST /v1/models/{m}/runs/cancel.
type RunCancelled struct {
	Cancelled string `json:"cancelled"` // the workflow id
}

// DecisionResponse answers POST /v1/models/{m}/approvals: what the run answered, and the
// attestation the API signed for the decision.
type DecisionResponse struct {
	Result        string `json:"result"`
	Approver      string `json:"approver"`
	RunID         string `json:"run_id"`
	AttestationID string `json:"attestation_id"`
}

// AttestationKeys answers GET /v1/attestation-keys.
type AttestationKeys struct {
	Keys []pipeline.AttestationKey `json:"keys"`
}

// ScheduleResponse answers PUT /v1/models/{m}/schedule.
type ScheduleResponse struct {
	ScheduleID  string `json:"schedule_id"`
	Cron        string `json:"cron"`
	SpecVersion int    `json:"spec_version"`
}

// ScheduleDeleted answers DELETE /v1/models/{m}/schedule.
type ScheduleDeleted struct {
	Deleted string `json:"deleted"` // the model
}

// MonitorStarted answers PUT /v1/models/{m}/monitor.
type MonitorStarted struct {
	WorkflowID  string `json:"workflow_id"`
	RunID       string `json:"run_id"`
	SpecVersion int    `json:"spec_version"`
}

// MonitorStopped answers DELETE /v1/models/{m}/monitor.
type MonitorStopped struct {
	Stopped string `json:"stopped"` // the workflow id
}

// FeaturesApplied answers PUT /v1/features/{repo}.
type FeaturesApplied struct {
	Repo    string            `json:"repo"`
	Version int               `json:"version"`
	Changed bool              `json:"changed"`
	Changes []features.Change `json:"changes"`
	Key     string            `json:"key"`
}

// MaterializeStarted answers POST /v1/features/{repo}/materialize.
type MaterializeStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// ReviewDecision answers POST /v1/models/{m}/monitor/reviews/{review}.
type ReviewDecision struct {
	Result        string `json:"result"`
	Review        string `json:"review"`
	By            string `json:"by"`
	AttestationID string `json:"attestation_id"`
}
