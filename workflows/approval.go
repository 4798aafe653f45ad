package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// approvals holds the approval state of a run: the Update handlers approve/reject (with a
// validator, so bad requests never reach history) and the Signal for services that can
// only signal (invalid signals are counted and ignored).
type approvals struct {
	r        *run
	awaiting int // version waiting for a decision; 0 when not waiting
	decided  bool
	approved bool
	via      string
	// rbac: approvers come from the RBAC policy (subjects user:<id> / group:<name>), looked up
	// by an activity when the run starts waiting.
	rbac      bool
	approvers []string
}

// allowed reports whether the request's identity is among the RBAC approvers.
func (a *approvals) allowed(req pipeline.Approval) bool {
	if slices.Contains(a.approvers, "user:"+req.Approver) {
		return true
	}
	for _, g := range req.Groups {
		if slices.Contains(a.approvers, "group:"+g) {
			return true
		}
	}
	return false
}

func (r *run) approvalHandlers() *approvals {
	a := &approvals{r: r}
	for _, name := range []string{pipeline.UpdateApprove, pipeline.UpdateReject} {
		approve := name == pipeline.UpdateApprove
		_ = workflow.SetUpdateHandlerWithOptions(r.ctx, name,
			func(ctx workflow.Context, req pipeline.Approval) (string, error) {
				a.decide(approve, req, "update")
				return fmt.Sprintf("v%d %s by %s", req.Version, map[bool]string{true: "approved", false: "rejected"}[approve], req.Approver), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req pipeline.Approval) error { return a.validate(req) }})
	}
	ch := workflow.GetSignalChannel(r.ctx, pipeline.SignalApproval)
	workflow.Go(r.ctx, func(ctx workflow.Context) {
		for {
			var sig pipeline.ApprovalSignal
			ch.Receive(ctx, &sig)
			if err := a.validate(sig.Approval); err != nil {
				r.status.IgnoredSignals++
				workflow.GetLogger(ctx).Warn("ignored approval signal", "approver", sig.Approver, "error", err)
				if workflow.GetVersion(ctx, "audit-ignored-signals", workflow.DefaultVersion, 1) >= 1 {
					_ = workflow.ExecuteActivity(withStep(ctx, pipeline.StagePromote, "audit an ignored approval signal"), pipeline.ActIgnoredSig,
						pipeline.IgnoredApproval{Model: r.in.Spec.Model, RunID: r.runID, Approver: sig.Approver, Version: sig.Version,
							Approve: sig.Approve, Why: err.Error()}).Get(ctx, nil)
				}
				continue
			}
			a.decide(sig.Approve, sig.Approval, "signal")
		}
	})
	return a
}

// validate rejects anything but a well-formed decision by a listed approver on the version
// this run is waiting for.
func (a *approvals) validate(req pipeline.Approval) error {
	spec := a.r.in.Spec.Approval
	switch {
	case a.awaiting == 0:
		return errors.New("this run is not waiting for approval (stage " + string(a.r.status.Stage) + ")")
	case a.decided:
		return fmt.Errorf("v%d was already decided", a.awaiting)
	case req.Version != a.awaiting:
		return fmt.Errorf("this run is waiting for a decision on v%d, not v%d", a.awaiting, req.Version)
	case strings.TrimSpace(req.Approver) == "":
		return errors.New("approver is required")
	case a.rbac && !a.allowed(req):
		return fmt.Errorf("%q (groups %v) may not approve model %s: approvers are %s", req.Approver, req.Groups, a.r.in.Spec.Model, strings.Join(a.approvers, ", "))
	case (!a.rbac || len(spec.Approvers) > 0) && !slices.Contains(spec.Approvers, req.Approver):
		return fmt.Errorf("%q is not an approver of model %s", req.Approver, a.r.in.Spec.Model)
	case strings.TrimSpace(req.Reason) == "":
		return errors.New("a reason is required")
	}
	return nil
}

func (a *approvals) decide(approve bool, req pipeline.Approval, via string) {
	a.decided, a.approved, a.via = true, approve, via
	a.r.status.Approval = &pipeline.Approval{Approver: req.Approver, Reason: req.Reason, Version: req.Version}
}

// prepare looks up who may approve (RBAC) and notifies them, before the run shows it waits:
// the stage changes only once an approval can be accepted.
func (a *approvals) prepare(version int, timeout time.Duration) error {
	if workflow.GetVersion(a.r.ctx, "rbac-approvals", workflow.DefaultVersion, 1) >= 1 {
		a.rbac = true
		if err := workflow.ExecuteActivity(withStep(a.r.ctx, pipeline.StagePolicy, "who may approve (RBAC)"), pipeline.ActApprovers,
			pipeline.ApproversInput{Model: a.r.in.Spec.Model}).Get(a.r.ctx, &a.approvers); err != nil {
			return err
		}
		a.r.status.Approvers = a.approvers
		if err := workflow.ExecuteActivity(withStep(a.r.ctx, pipeline.StagePolicy, "notify approvers"), pipeline.ActNotify, pipeline.ApprovalRequest{
			Model: a.r.in.Spec.Model, RunID: a.r.runID, WorkflowID: a.r.wfID, Version: version, Approvers: a.approvers,
			Timeout: timeout, Evidence: a.r.memo()}).Get(a.r.ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// wait blocks durably until a decision or the timeout. The caller enters the approval stage
// just before, in the same workflow task, so the stage and the readiness to accept agree.
func (a *approvals) wait(version int, timeout time.Duration) (approved, timedOut bool, err error) {
	a.awaiting = version
	ok, err := workflow.AwaitWithTimeout(a.r.ctx, timeout, func() bool { return a.decided })
	if err != nil {
		return false, false, err
	}
	a.awaiting = 0
	if !ok {
		a.decided = true // late requests are refused
		return false, true, nil
	}
	ap := a.r.status.Approval
	err = workflow.ExecuteActivity(withStep(a.r.ctx, pipeline.StagePromote, "audit the approval decision"), pipeline.ActApproval, pipeline.ApprovalRecord{
		Model: a.r.in.Spec.Model, RunID: a.r.runID, Version: version, Approver: ap.Approver, Reason: ap.Reason,
		Approved: a.approved, Via: a.via}).Get(a.r.ctx, nil)
	return a.approved, false, err
}
