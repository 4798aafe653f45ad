package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// FleetRolloutWorkflow ramps a version through a fleet of devices (docs/edge.md, "Fleets"):
// the version's bundle is signed again as the fleet's candidate, then each step of the
// model's canary guardrails moves a share of the devices (by a stable hash of their ids) to
// it, bakes, and judges what the devices uploaded with the serving canary's judge. A breach,
// too little data after the bakes of a step, or the stop signal rolls every device back to
// the stable version (signed again under a newer counter, so the devices on the candidate
// take it); passing every step makes the candidate the fleet's stable release.
func FleetRolloutWorkflow(ctx workflow.Context, in pipeline.FleetRolloutInput) (pipeline.FleetRolloutResult, error) {
	res := pipeline.FleetRolloutResult{}
	step := pipeline.FleetStepInput{Model: in.Model, Fleet: in.Fleet, Rollout: workflow.GetInfo(ctx).WorkflowExecution.RunID,
		Version: in.Version, Actor: in.Requester, Reason: in.Reason}
	var begun pipeline.FleetBeginResult
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageCanary, fmt.Sprintf("sign v%d for fleet %s", in.Version, in.Fleet)),
		pipeline.ActFleetBegin, step).Get(ctx, &begun); err != nil {
		return res, err
	}
	stop := workflow.GetSignalChannel(ctx, pipeline.SignalFleetStop)
	finish := func(promote bool, reason string) (pipeline.FleetRolloutResult, error) {
		dctx, _ := workflow.NewDisconnectedContext(ctx) // roll back even when cancelled
		fin := step
		fin.Promote, fin.Reason = promote, reason
		what := fmt.Sprintf("roll fleet %s back to v%d", in.Fleet, begun.Stable)
		if promote {
			what = fmt.Sprintf("make v%d fleet %s's stable release", in.Version, in.Fleet)
		}
		err := workflow.ExecuteActivity(withStep(dctx, pipeline.StagePromote, what), pipeline.ActFleetFinish, fin).Get(dctx, nil)
		res.Promoted, res.Reason = promote && err == nil, reason
		return res, err
	}
	g := begun.Guardrails
	shares := g.StepShares()
	var start time.Time
	for i, share := range shares {
		n := i + 1
		step.Share, step.Step = share, n
		var set pipeline.FleetShareResult
		if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageCanary, fmt.Sprintf("step %d: %.0f%% of fleet %s on v%d", n, 100*share, in.Fleet, in.Version)),
			pipeline.ActFleetShare, step).Get(ctx, &set); err != nil {
			return finish(false, "fleet step failed: "+rootMessage(err))
		}
		if i == 0 {
			start = set.Since
		}
		passed := false
		for bake := 1; bake <= max(g.MaxBakes, 1) && !passed; bake++ {
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("fleet %s step %d of %d (%.0f%%): baking v%d, evaluation %d of at most %d", in.Fleet, n, len(shares), 100*share, in.Version, bake, g.MaxBakes))
			if why, stopped := bakeOrStop(ctx, stop, g.Bake.Duration); stopped {
				return finish(false, why)
			}
			var ev pipeline.CanaryEvalResult
			if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageCanary, fmt.Sprintf("step %d: judge v%d against v%d on the devices' uploads (bake %d)", n, in.Version, begun.Stable, bake)),
				pipeline.ActFleetJudge, pipeline.FleetJudgeInput{Model: in.Model, Fleet: in.Fleet, Candidate: in.Version, Stable: begun.Stable, Step: n, Bake: bake,
					Share: share, Since: set.Since, Start: start, Guardrails: g}).Get(ctx, &ev); err != nil {
				return finish(false, "fleet judge failed: "+rootMessage(err))
			}
			res.Evidence = append(res.Evidence, ev)
			switch ev.Decision {
			case pipeline.CanaryRollback:
				return finish(false, fmt.Sprintf("step %d at %.0f%% of the fleet: %s", n, 100*share, ev.Reason))
			case pipeline.CanaryPromote:
				passed = true
			}
		}
		if !passed {
			return finish(false, fmt.Sprintf("inconclusive after %d bakes at step %d: %s", max(g.MaxBakes, 1), n, res.Evidence[len(res.Evidence)-1].Reason))
		}
	}
	return finish(true, fmt.Sprintf("passed %d steps on the fleet; last: %s", len(shares), res.Evidence[len(res.Evidence)-1].Reason))
}

// bakeOrStop waits d, or until the stop signal (then it says who stopped it and why) or a
// cancellation.
func bakeOrStop(ctx workflow.Context, stop workflow.ReceiveChannel, d time.Duration) (string, bool) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, d)
	why, stopped := "", false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(f workflow.Future) {
		if err := f.Get(ctx, nil); err != nil {
			why, stopped = "rollout cancelled: "+err.Error(), true
		}
	})
	sel.AddReceive(stop, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.FleetStop
		c.Receive(ctx, &s)
		why, stopped = fmt.Sprintf("stopped by %s: %s", s.By, s.Reason), true
	})
	sel.Select(ctx)
	return why, stopped
}
