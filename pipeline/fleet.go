package pipeline

import (
	"time"

	"github.com/driftline/driftline/spec"
)

// Fleet rollouts: workflow fleet/<model>/<fleet> ramps a version through a fleet of devices
// (docs/edge.md, "Fleets").
const (
	FleetWorkflow  = "FleetRollout"
	ActFleetBegin  = "FleetBegin"
	ActFleetShare  = "FleetShare"
	ActFleetJudge  = "FleetJudge"
	ActFleetFinish = "FleetFinish"
	// SignalFleetStop stops a rollout: the fleet rolls back to its stable release (FleetStop).
	SignalFleetStop = "stop"
)

// FleetWorkflowID is the id of a fleet's rollout: one at a time per fleet.
func FleetWorkflowID(model, fleet string) string { return "fleet/" + model + "/" + fleet }

// FleetRolloutInput starts a rollout of Version to the fleet. The guardrails are not an input:
// the rollout reads them from the model's registered spec (what a requester sends cannot
// loosen them).
type FleetRolloutInput struct {
	Model     string `json:"model"`
	Fleet     string `json:"fleet"`
	Version   int    `json:"version"`
	Requester string `json:"requester"`
	Reason    string `json:"reason,omitempty"`
}

// FleetStop is the stop signal's payload: who stopped the rollout and why.
type FleetStop struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// FleetStepInput names one change of a rollout.
type FleetStepInput struct {
	Model   string  `json:"model"`
	Fleet   string  `json:"fleet"`
	Rollout string  `json:"rollout"` // the workflow's run id: only its own rollout is changed
	Version int     `json:"version"`
	Actor   string  `json:"actor"`
	Share   float64 `json:"share,omitempty"`
	Step    int     `json:"step,omitempty"`
	Promote bool    `json:"promote,omitempty"` // FleetFinish: promote (else roll back)
	Reason  string  `json:"reason,omitempty"`
}

// FleetBeginResult is the rollout's start: the fleet's stable version, the candidate's
// bundle counter and the guardrails of the model's registered spec.
type FleetBeginResult struct {
	Stable     int         `json:"stable"`
	Counter    uint64      `json:"counter"`
	Guardrails spec.Canary `json:"guardrails"`
}

// FleetShareResult is when the share took effect.
type FleetShareResult struct {
	Since time.Time `json:"since"`
}

// FleetJudgeInput is one look at what the fleet's devices uploaded: the step's records since
// Since, and every record since Start for the live MAE test over the whole rollout.
type FleetJudgeInput struct {
	Model      string      `json:"model"`
	Fleet      string      `json:"fleet"`
	Candidate  int         `json:"candidate"`
	Stable     int         `json:"stable"`
	Step       int         `json:"step"`
	Bake       int         `json:"bake"`
	Share      float64     `json:"share"`
	Since      time.Time   `json:"since"`
	Start      time.Time   `json:"start"`
	Guardrails spec.Canary `json:"guardrails"`
}

// FleetRolloutResult is how a rollout ended, with the evidence of every look.
type FleetRolloutResult struct {
	Promoted bool               `json:"promoted"`
	Reason   string             `json:"reason"`
	Evidence []CanaryEvalResult `json:"evidence,omitempty"`
}
