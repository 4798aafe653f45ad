package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/activities"
)

// CanaryWorkflowFunc sends a share of live traffic to the candidate, bakes on durable timers
// and compares it with production on the live guardrails after each bake. A breach rolls back
// at once; passing promotes; too little traffic after MaxBakes bakes rolls back too.
func CanaryWorkflowFunc(ctx workflow.Context, in CanaryInput) (CanaryResult, error) {
	res := CanaryResult{}
	deploy := activities.DeployInput{Model: in.Model, RunID: in.RunID, Actor: "driftline", Version: in.Candidate, Share: in.Settings.Share}
	var set activities.DeployResult
	deploy.Reason = fmt.Sprintf("canary at %.0f%%", 100*in.Settings.Share)
	if err := workflow.ExecuteActivity(withStep(ctx, StageCanary, fmt.Sprintf("route %.0f%% to v%d", 100*in.Settings.Share, in.Candidate)),
		reg.SetCanary, deploy).Get(ctx, &set); err != nil {
		return res, err
	}
	rollback := func(reason string) (CanaryResult, error) {
		// Roll back even if the workflow is being cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		deploy.Reason = reason
		err := workflow.ExecuteActivity(withStep(dctx, StagePromote, fmt.Sprintf("roll back v%d", in.Candidate)), reg.AbortCanary, deploy).Get(dctx, nil)
		res.Reason = reason
		return res, err
	}
	for bake := 1; bake <= in.Settings.MaxBakes; bake++ {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("baking v%d, evaluation %d of at most %d", in.Candidate, bake, in.Settings.MaxBakes))
		if err := workflow.Sleep(ctx, in.Settings.Bake.Duration); err != nil {
			return rollback("canary cancelled: " + err.Error())
		}
		var ev activities.CanaryEvalResult
		if err := workflow.ExecuteActivity(withStep(ctx, StageCanary, fmt.Sprintf("compare v%d with v%d on live traffic (bake %d)", in.Candidate, in.Production, bake)),
			can.EvaluateCanary, activities.CanaryEvalInput{Model: in.Model, RunID: in.RunID, Candidate: in.Candidate, Production: in.Production,
				Since: set.CanarySince, Bake: bake, Guardrails: in.Settings}).Get(ctx, &ev); err != nil {
			return rollback("canary evaluation failed: " + rootMessage(err))
		}
		res.Evidence = append(res.Evidence, ev)
		switch ev.Decision {
		case activities.CanaryRollback:
			return rollback(ev.Reason)
		case activities.CanaryPromote:
			deploy.Reason = ev.Reason
			if err := workflow.ExecuteActivity(withStep(ctx, StagePromote, fmt.Sprintf("promote v%d", in.Candidate)), reg.Promote, deploy).Get(ctx, nil); err != nil {
				return rollback("promotion failed: " + rootMessage(err))
			}
			res.Promoted, res.Reason = true, ev.Reason
			return res, nil
		}
	}
	last := "no evaluation"
	if n := len(res.Evidence); n > 0 {
		last = res.Evidence[n-1].Reason
	}
	return rollback(fmt.Sprintf("inconclusive after %d bakes: %s", in.Settings.MaxBakes, last))
}
