package pipeline

import (
	"time"

	"github.com/driftline/driftline/spec"
)

// RunInput starts one run of the loop.
type RunInput struct {
	Spec spec.Spec
	// From and To are the inclusive window dates (YYYY-MM-DD). Empty: the spec's window_days
	// ending yesterday, by the workflow's clock (what schedules use).
	From, To    string
	Force       bool // retrain even without drift
	RequestedBy string
	// Reason says why a run was started by the system (the monitor's evidence); also in the
	// run's memo.
	Reason string `json:",omitempty"`
	// Origin is the control-plane API's attestation of who started the run (or the monitor or
	// schedule that started it): the policy step takes the requester from it, never from
	// RequestedBy, which any Temporal client can set.
	Origin string `json:",omitempty"`
	// SpecVersion is the registered spec version the run was started with (0: not known).
	SpecVersion int `json:",omitempty"`
}

// Step is one finished step, shown by `driftline status` and the status query.
type Step struct {
	Name     Stage     `json:"name"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Summary  string    `json:"summary"`
}

// Approval is a human decision on a candidate. Approver and Groups are the identity the
// approvals endpoint authenticated (a bearer token's subject and groups).
type Approval struct {
	Approver string   `json:"approver"`
	Groups   []string `json:"groups,omitempty"`
	Reason   string   `json:"reason"`
	Version  int      `json:"version"`
	// Attestation is the control-plane API's signed statement of this decision (see
	// VerifyAttestation); without one an approval is break-glass, accepted only when the
	// spec allows it and recorded as such.
	Attestation string `json:"attestation,omitempty"`
	// BreakGlass is set by the workflow on an accepted approval without attestation.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// ApprovalSignal is the signal form, for services that can only signal.
type ApprovalSignal struct {
	Approve bool `json:"approve"`
	Approval
}

// Status is the run's state, answered by the status query and summarised in the memo.
type Status struct {
	Model            string             `json:"model"`
	RequestedBy      string             `json:"requested_by,omitempty"`
	Trigger          string             `json:"trigger,omitempty"` // why the system started it (RunInput.Reason)
	Stage            Stage              `json:"stage"`
	Outcome          Outcome            `json:"outcome,omitempty"`
	Reason           string             `json:"reason,omitempty"`
	From             string             `json:"from"`
	To               string             `json:"to"`
	Snapshot         *SnapshotResult    `json:"snapshot,omitempty"`
	TrainingSet      *TrainingSetResult `json:"training_set,omitempty"`
	Validation       *ValidateResult    `json:"validation,omitempty"`
	Drift            *DriftResult       `json:"drift,omitempty"`
	Training         *TrainResult       `json:"training,omitempty"`
	Evaluation       *EvaluateResult    `json:"evaluation,omitempty"`
	CandidateVersion int                `json:"candidate_version,omitempty"`
	Policy           *PolicyResult      `json:"policy,omitempty"`
	Approval         *Approval          `json:"approval,omitempty"`
	Approvers        []string           `json:"approvers,omitempty"`
	IgnoredSignals   int                `json:"ignored_signals,omitempty"`
	Canary           []CanaryEvalResult `json:"canary,omitempty"`
	Steps            []Step             `json:"steps"`
}

// RunResult is the workflow's result.
type RunResult struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason"`
	Version int     `json:"version,omitempty"`
}

// CanaryInput starts the canary child workflow.
type CanaryInput struct {
	Model, RunID          string
	Candidate, Production int
	Settings              spec.Canary
}

// CanaryResult is the canary's verdict.
type CanaryResult struct {
	Promoted bool
	Reason   string
	Evidence []CanaryEvalResult
}
