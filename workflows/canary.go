package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// CanaryWorkflowFunc ramps live traffic to the candidate through the configured steps (e.g.
// 5%, 25%, 50%); at each step it bakes on durable timers and compares the candidate with
// production on the step's traffic. Any breach rolls back at once; too little traffic after
// MaxBakes bakes of a step rolls back too; passing every step promotes.
func CanaryWorkflowFunc(ctx workflow.Context, in pipeline.CanaryInput) (pipeline.CanaryResult, error) {
	res := pipeline.CanaryResult{}
	steps := []float64{in.Settings.Share}
	if workflow.GetVersion(ctx, "canary-steps", workflow.DefaultVersion, 1) >= 1 {
		steps = in.Settings.StepShares()
	}
	deploy := pipeline.DeployInput{Model: in.Model, RunID: in.RunID, Actor: "driftline", Version: in.Candidate, Mode: in.Settings.Mode,
		PairedShare: in.Settings.PairedShare}
	var start time.Time // when the first step began
	rollback := func(reason string) (pipeline.CanaryResult, error) {
		// Roll back even if the workflow is being cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		deploy.Reason = reason
		err := workflow.ExecuteActivity(withStep(dctx, pipeline.StagePromote, fmt.Sprintf("roll back v%d", in.Candidate)), pipeline.ActAbortCanary, deploy).Get(dctx, nil)
		res.Reason = reason
		return res, err
	}
	for step, share := range steps {
		n := step + 1
		deploy.Share = share
		deploy.Reason = fmt.Sprintf("canary step %d of %d at %.0f%%", n, len(steps), 100*share)
		var set pipeline.DeployResult
		if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageCanary, fmt.Sprintf("step %d: route %.0f%% to v%d", n, 100*share, in.Candidate)),
			pipeline.ActSetCanary, deploy).Get(ctx, &set); err != nil {
			if step == 0 {
				return res, err
			}
			return rollback("canary step failed: " + rootMessage(err))
		}
		if step == 0 {
			start = set.CanarySince
		}
		passed := false
		for bake := 1; bake <= in.Settings.MaxBakes && !passed; bake++ {
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("step %d of %d (%.0f%%): baking v%d, evaluation %d of at most %d", n, len(steps), 100*share, in.Candidate, bake, in.Settings.MaxBakes))
			if err := workflow.Sleep(ctx, in.Settings.Bake.Duration); err != nil {
				return rollback("canary cancelled: " + err.Error())
			}
			var ev pipeline.CanaryEvalResult
			if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageCanary, fmt.Sprintf("step %d: compare v%d with v%d on live traffic (bake %d)", n, in.Candidate, in.Production, bake)),
				pipeline.ActCanaryEval, pipeline.CanaryEvalInput{Model: in.Model, RunID: in.RunID, Candidate: in.Candidate, Production: in.Production,
					Since: set.CanarySince, Start: start, Step: n, Bake: bake, Share: share, Guardrails: in.Settings}).Get(ctx, &ev); err != nil {
				return rollback("canary evaluation failed: " + rootMessage(err))
			}
			res.Evidence = append(res.Evidence, ev)
			switch ev.Decision {
			case pipeline.CanaryRollback:
				return rollback(fmt.Sprintf("step %d at %.0f%%: %s", n, 100*share, ev.Reason))
			case pipeline.CanaryPromote:
				passed = true
			}
		}
		if !passed {
			last := "no evaluation"
			if k := len(res.Evidence); k > 0 {
				last = res.Evidence[k-1].Reason
			}
			return rollback(fmt.Sprintf("inconclusive after %d bakes at step %d: %s", in.Settings.MaxBakes, n, last))
		}
	}
	final := res.Evidence[len(res.Evidence)-1].Reason
	deploy.Reason = final
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePromote, fmt.Sprintf("promote v%d", in.Candidate)), pipeline.ActPromote, deploy).Get(ctx, nil); err != nil {
		return rollback("promotion failed: " + rootMessage(err))
	}
	res.Promoted = true
	res.Reason = fmt.Sprintf("passed %d canary steps; last: %s", len(steps), final)
	return res, nil
}
