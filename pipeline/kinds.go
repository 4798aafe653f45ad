package pipeline

import (
	"errors"

	"github.com/driftline/driftline/spec"
)

// Outcome is how a run ended: exactly one per run.
type Outcome string

// The outcomes.
const (
	OutcomePromoted           Outcome = "promoted"
	OutcomeRolledBack         Outcome = "rolled_back"
	OutcomeNoDrift            Outcome = "no_drift"
	OutcomeFailedValidation   Outcome = "failed_validation"
	OutcomeRejectedByPolicy   Outcome = "rejected_by_policy"
	OutcomeRejectedByApprover Outcome = "rejected_by_approver"
	OutcomeApprovalTimeout    Outcome = "approval_timeout"
	OutcomeFailed             Outcome = "failed"
)

// Outcomes lists every outcome, in a fixed order (metrics pre-initialise them).
var Outcomes = []Outcome{OutcomePromoted, OutcomeRolledBack, OutcomeNoDrift, OutcomeFailedValidation,
	OutcomeRejectedByPolicy, OutcomeRejectedByApprover, OutcomeApprovalTimeout, OutcomeFailed}

// Stage is where a run is.
type Stage string

// The stages, in order.
const (
	StageSnapshot Stage = "snapshot"
	StageFeatures Stage = "features" // the feature service's training set (spec feature_service)
	StageValidate Stage = "validate"
	StageDrift    Stage = "drift"
	StageTrain    Stage = "train"
	StageEvaluate Stage = "evaluate"
	StageRegister Stage = "register"
	StagePolicy   Stage = "policy"
	StageApproval Stage = "awaiting_approval"
	StageCanary   Stage = "canary"
	StagePromote  Stage = "promote"
	StageDone     Stage = "done"
)

// Route is which model answered a request.
type Route string

// The routes.
const (
	RouteProduction Route = "production"
	RouteCanary     Route = "canary" // the candidate answers its share (canary mode split)
	RouteShadow     Route = "shadow" // the candidate is scored on its share and only logged
	// RoutePaired logs the other model's answer to a request during a canary: scored off the
	// request path and never returned, so the canary compares both models on the same request.
	RoutePaired Route = "paired"
	// RoutePinned is a request a client sent to the canary's version by name (the v2 API's
	// /versions/{v}/ path): logged, but not the canary's evidence (it was not a random share).
	RoutePinned Route = "pinned"
)

// CandidateRoute is the route a candidate's answers are logged under in a canary mode.
func CandidateRoute(m spec.CanaryMode) Route {
	if m == spec.ModeShadow {
		return RouteShadow
	}
	return RouteCanary
}

// CanaryDecision is one canary evaluation's verdict.
type CanaryDecision string

// The decisions.
const (
	CanaryPromote  CanaryDecision = "promote"  // every guardrail evaluated and within bounds
	CanaryRollback CanaryDecision = "rollback" // a guardrail is breached
	CanaryWait     CanaryDecision = "wait"     // not enough traffic yet to judge
	// CanaryInconclusive: a guardrail could not be evaluated (a model failed to load, the
	// evidence is missing); the workflow never promotes on it and rolls back when a step ends
	// inconclusive.
	CanaryInconclusive CanaryDecision = "inconclusive"
)

// Application error types the workflow branches on (temporal.ApplicationError.Type). None of
// them is retried.
const (
	ErrTypeInvalidData   = "InvalidData"   // schema, corrupt file, empty window, too many bad rows
	ErrTypeModelNotFound = "ModelNotFound" // a version or artifact that should exist does not
	ErrTypeBadArtifact   = "BadArtifact"   // checksum or format failure
	ErrTypeConflict      = "Conflict"      // the deployment pointer is not in the expected state
)

// ErrRunInProgress is what starting a model's loop while one runs is (errors.Is): the
// starter refuses the second run, and a trigger (the ingest worker's) counts it as busy
// instead of as a failure.
var ErrRunInProgress = errors.New("a run is in progress")

// NonRetryable lists the types above for retry policies.
var NonRetryable = []string{ErrTypeInvalidData, ErrTypeModelNotFound, ErrTypeBadArtifact, ErrTypeConflict}
