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
	// attested: approvals must carry the control-plane API's attestation (or be break-glass,
	// when the spec allows it); keys verify them, used holds the attestations already taken.
	attested bool
	keys     []pipeline.AttestationKey
	used     map[string]bool
	accepted accepted
}

// accepted is what the validator established about the decision being taken.
type accepted struct {
	attestation, id, messageID string
	breakGlass                 bool
	who                        pipeline.Attested
}

// allowed reports whether the request's identity is among the RBAC approvers.
func (a *approvals) allowed(req pipeline.Approval) bool {
	return among(a.approvers, req.Approver, req.Groups)
}

// among reports whether a subject (user id, groups) is in a list of RBAC subjects
// (user:<id>, group:<name>).
func among(subjects []string, user string, groups []string) bool {
	if slices.Contains(subjects, "user:"+user) {
		return true
	}
	for _, g := range groups {
		if slices.Contains(subjects, "group:"+g) {
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
				acc, err := a.check(ctx, approve, req)
				if err != nil { // the state changed since the validator ran
					return "", err
				}
				if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
					acc.messageID = info.ID
				}
				a.accepted = acc
				a.decide(approve, req, "update")
				return fmt.Sprintf("v%d %s by %s", req.Version, map[bool]string{true: "approved", false: "rejected"}[approve], a.r.status.Approval.Approver), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req pipeline.Approval) error {
				_, err := a.check(ctx, approve, req)
				return err
			}})
	}
	ch := workflow.GetSignalChannel(r.ctx, pipeline.SignalApproval)
	workflow.Go(r.ctx, func(ctx workflow.Context) {
		for n := 1; ; n++ {
			var sig pipeline.ApprovalSignal
			ch.Receive(ctx, &sig)
			acc, err := a.check(ctx, sig.Approve, sig.Approval)
			if err != nil {
				r.status.IgnoredSignals++
				workflow.GetLogger(ctx).Warn("ignored approval signal", "approver", sig.Approver, "error", err)
				if workflow.GetVersion(ctx, "audit-ignored-signals", workflow.DefaultVersion, 1) >= 1 {
					_ = workflow.ExecuteActivity(withStep(ctx, pipeline.StagePromote, "audit an ignored approval signal"), pipeline.ActIgnoredSig,
						pipeline.IgnoredApproval{Model: r.in.Spec.Model, RunID: r.runID, Approver: sig.Approver, Version: sig.Version,
							Approve: sig.Approve, Why: err.Error(), Signal: n}).Get(ctx, nil)
				}
				continue
			}
			a.accepted = acc
			a.decide(sig.Approve, sig.Approval, "signal")
		}
	})
	return a
}

// check accepts a decision only with a valid attestation for this run, version and decision,
// used once (or, when the spec allows it, as break-glass); runs from before attestations
// keep the older check of the claimed approver (validate).
func (a *approvals) check(ctx workflow.Context, approve bool, req pipeline.Approval) (accepted, error) {
	if !a.attested {
		return accepted{}, a.validate(req)
	}
	switch {
	case a.awaiting == 0:
		return accepted{}, errors.New("this run is not waiting for approval (stage " + string(a.r.status.Stage) + ")")
	case a.decided:
		return accepted{}, fmt.Errorf("v%d was already decided", a.awaiting)
	case req.Version != a.awaiting:
		return accepted{}, fmt.Errorf("this run is waiting for a decision on v%d, not v%d", a.awaiting, req.Version)
	case strings.TrimSpace(req.Reason) == "":
		return accepted{}, errors.New("a reason is required")
	}
	if req.Attestation == "" {
		if !a.breakGlass() {
			return accepted{}, errors.New("an attested decision is required: decide through the control-plane API (driftline approve, with DRIFTLINE_TOKEN); break-glass is off for this model")
		}
		return accepted{breakGlass: true}, nil
	}
	// Pure: a signature check and JSON decoding of the token, the same on every replay
	// (workflowcheck flags encoding/json's reflection).
	//workflowcheck:ignore
	att, err := pipeline.VerifyAttestation(req.Attestation, a.keys, workflow.Now(ctx))
	decision := "reject"
	if approve {
		decision = "approve"
	}
	switch {
	case err != nil:
		return accepted{}, err
	case att.Kind != pipeline.KindApproval || att.Model != a.r.in.Spec.Model || att.RunID != a.r.runID || att.Version != a.awaiting || att.Decision != decision:
		return accepted{}, fmt.Errorf("%w: it attests %s of %s v%d in run %s, this is %s of v%d in run %s",
			pipeline.ErrAttestation, att.Decision, att.Model, att.Version, att.RunID, decision, a.awaiting, a.r.runID)
	case a.used[att.ID]:
		return accepted{}, fmt.Errorf("%w: attestation %s was used already", pipeline.ErrAttestation, att.ID)
	case !a.allowed(pipeline.Approval{Approver: att.Subject, Groups: att.Groups}):
		return accepted{}, fmt.Errorf("%q (groups %v) may not approve model %s: approvers are %s", att.Subject, att.Groups, a.r.in.Spec.Model, strings.Join(a.approvers, ", "))
	case a.requester() != "" && att.Subject == a.requester():
		return accepted{}, fmt.Errorf("%q requested this run and may not approve it: the organisation requires another approver", att.Subject)
	case a.governed() && len(a.r.in.Spec.Approval.Approvers) > 0 && !slices.Contains(a.r.in.Spec.Approval.Approvers, att.Subject):
		// The spec narrows who may approve (a governed field: the policy step checked the
		// run's spec against the registered one).
		return accepted{}, fmt.Errorf("%q may approve models, but the spec of %s names its approvers: %s", att.Subject, a.r.in.Spec.Model,
			strings.Join(a.r.in.Spec.Approval.Approvers, ", "))
	}
	return accepted{attestation: req.Attestation, id: att.ID, who: att}, nil
}

// breakGlass reports whether a decision without attestation may be accepted: as the policy
// decided on the registered spec and the organisation's floors, or, for runs from before
// registered specs, as the run's own spec says.
func (a *approvals) breakGlass() bool {
	if p := a.r.status.Policy; p != nil && p.Governed {
		return p.BreakGlass
	}
	return a.r.in.Spec.Approval.BreakGlass
}

// governed reports whether the policy step decided on the model's registered spec.
func (a *approvals) governed() bool { return a.r.status.Policy != nil && a.r.status.Policy.Governed }

// requester is the attested requester a decision must not come from ("" when the
// organisation does not require a distinct approver).
func (a *approvals) requester() string {
	if p := a.r.status.Policy; p != nil && p.Governed && p.DistinctApprover {
		return p.Requester
	}
	return ""
}

// validate rejects anything but a well-formed decision by a listed approver on the version
// this run is waiting for (runs from before attestations).
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
	ap := &pipeline.Approval{Approver: req.Approver, Reason: req.Reason, Version: req.Version}
	switch acc := a.accepted; {
	case acc.breakGlass:
		// Never under the claimed name: the record names the Temporal client that sent it.
		ap.Approver, ap.BreakGlass = "break-glass", true
	case acc.id != "":
		if a.used == nil {
			a.used = map[string]bool{}
		}
		a.used[acc.id] = true
		ap.Approver, ap.Groups, ap.Reason = acc.who.Subject, acc.who.Groups, acc.who.Reason
	}
	a.r.status.Approval = ap
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
		if workflow.GetVersion(a.r.ctx, "attested-approvals", workflow.DefaultVersion, 1) >= 1 {
			a.attested = true
			if err := workflow.ExecuteActivity(withStep(a.r.ctx, pipeline.StagePolicy, "keys that verify approval attestations"), pipeline.ActAttestKeys,
				pipeline.AttestationKeysInput{Model: a.r.in.Spec.Model}).Get(a.r.ctx, &a.keys); err != nil {
				return err
			}
		}
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
	acc := a.accepted
	err = workflow.ExecuteActivity(withStep(a.r.ctx, pipeline.StagePromote, "audit the approval decision"), pipeline.ActApproval, pipeline.ApprovalRecord{
		Model: a.r.in.Spec.Model, RunID: a.r.runID, Version: version, Approver: ap.Approver, Reason: ap.Reason,
		Approved: a.approved, Via: a.via, Attestation: acc.attestation, AttestationID: acc.id, BreakGlass: acc.breakGlass,
		MessageID: acc.messageID}).Get(a.r.ctx, nil)
	return a.approved, false, err
}
