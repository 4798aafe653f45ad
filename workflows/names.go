// Package workflows holds Driftline's deterministic workflow code: the continuous-training
// loop and its canary child workflow. Names shared with clients live here, in one place.
package workflows

import (
	"go.temporal.io/sdk/temporal"
)

// Task queue and workflow names.
const (
	TaskQueue          = "driftline-pipeline"
	ContinuousTraining = "ContinuousTraining"
	CanaryWorkflow     = "Canary"
)

// Message names.
const (
	QueryStatus    = "status"
	UpdateApprove  = "approve"
	UpdateReject   = "reject"
	SignalApproval = "approval"
)

// Custom search attributes (created by `driftline setup` and the dev server flags).
var (
	AttrModel      = temporal.NewSearchAttributeKeyKeyword("DriftlineModel")
	AttrOutcome    = temporal.NewSearchAttributeKeyKeyword("DriftlineOutcome")
	AttrStage      = temporal.NewSearchAttributeKeyKeyword("DriftlineStage")
	AttrDriftScore = temporal.NewSearchAttributeKeyFloat64("DriftlineDriftScore")
	AttrVersion    = temporal.NewSearchAttributeKeyInt64("DriftlineCandidateVersion")
)

// SearchAttributes lists every custom attribute with its type name, for setup.
var SearchAttributes = map[string]string{
	AttrModel.GetName():      "Keyword",
	AttrOutcome.GetName():    "Keyword",
	AttrStage.GetName():      "Keyword",
	AttrDriftScore.GetName(): "Double",
	AttrVersion.GetName():    "Int",
}

// WorkflowID is the id of a model's loop: one open run per model.
func WorkflowID(model string) string { return "ct/" + model }

// Outcomes.
const (
	OutcomePromoted           = "promoted"
	OutcomeRolledBack         = "rolled_back"
	OutcomeNoDrift            = "no_drift"
	OutcomeFailedValidation   = "failed_validation"
	OutcomeRejectedByPolicy   = "rejected_by_policy"
	OutcomeRejectedByApprover = "rejected_by_approver"
	OutcomeApprovalTimeout    = "approval_timeout"
	OutcomeFailed             = "failed"
)

// Stages, in order.
const (
	StageSnapshot = "snapshot"
	StageValidate = "validate"
	StageDrift    = "drift"
	StageTrain    = "train"
	StageEvaluate = "evaluate"
	StageRegister = "register"
	StagePolicy   = "policy"
	StageApproval = "awaiting_approval"
	StageCanary   = "canary"
	StagePromote  = "promote"
	StageDone     = "done"
)
