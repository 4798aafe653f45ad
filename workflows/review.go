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

// reviewTimeoutFloor keeps an escalation timer positive when a review carried across
// continue-as-new is already past its deadline.
const reviewTimeoutFloor = time.Second

// reviews is the monitor's fairness review: a fairness breach opens one (only one is open at a
// time), someone who may approve the model acknowledges it through the Update acknowledge with
// the control-plane API's attestation, and unacknowledged past monitoring.review_timeout it
// escalates. The state lives in the monitor's input, so it survives continue-as-new.
type reviews struct {
	ctx workflow.Context
	st  *pipeline.MonitorInput
}

func newReviews(ctx workflow.Context, st *pipeline.MonitorInput) (*reviews, error) {
	rv := &reviews{ctx: ctx, st: st}
	if st.Review != nil && st.Review.Decision == "" {
		// Who may acknowledge and the keys that verify them come from the worker, never from
		// the monitor's input: a Temporal client could start a monitor whose input names its
		// own reviewers and keys. Cleared before the handler is registered: an Update sent with
		// the start is validated as the handler is set.
		if workflow.GetVersion(ctx, "review-keys-from-worker", workflow.DefaultVersion, 1) >= 1 {
			st.Review.Reviewers, st.Review.Keys = nil, nil
		}
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, pipeline.UpdateAcknowledge, rv.acknowledge,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req pipeline.ReviewAck) error {
			_, err := rv.check(ctx, req)
			return err
		}})
	if err != nil {
		return nil, err
	}
	if st.Review != nil && st.Review.Decision == "" {
		rv.arm() // carried over: its escalation is still due
	}
	return rv, nil
}

// open starts a review of the window's fairness breach: it looks up who may acknowledge it
// and the keys that verify their attestations, records it, notifies (webhook and
// Alertmanager) and arms the escalation.
func (rv *reviews) open(res pipeline.MonitorWindowResult) {
	ctx, sp := rv.ctx, rv.st.Spec
	now := workflow.Now(ctx)
	r := &pipeline.FairnessReview{ID: "fairness-" + now.UTC().Format("20060102T150405Z"), Model: sp.Model, Version: res.Version,
		OpenedAt: now, Deadline: now.Add(sp.Monitoring.ReviewTimeout.Duration), Report: res.ReportURI,
		Attribute: sp.Fairness.ProtectedAttribute, DisparateImpact: res.DisparateImpact, Low: res.DisparateImpactLow,
		High: res.DisparateImpactHigh, Floor: sp.Fairness.MinDisparateImpact, EscalateTo: sp.Monitoring.EscalateTo}
	log := workflow.GetLogger(ctx)
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "who may acknowledge the fairness review (RBAC)"), pipeline.ActApprovers,
		pipeline.ApproversInput{Model: sp.Model}).Get(ctx, &r.Reviewers); err != nil {
		log.Error("fairness review: reviewers", "err", err) // the review stays open; nobody can acknowledge it until the monitor's next run
	}
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "keys that verify review attestations"), pipeline.ActAttestKeys,
		pipeline.AttestationKeysInput{Model: sp.Model}).Get(ctx, &r.Keys); err != nil {
		log.Error("fairness review: attestation keys", "err", err)
	}
	rv.st.Review = r
	rv.event(ctx, "opened")
	rv.arm()
}

// refresh looks the reviewers and keys up again for an open review that has none (their
// lookup failed when it opened): called at the start of each monitor run.
func (rv *reviews) refresh() {
	r := rv.st.Review
	if r == nil || r.Decision != "" || (len(r.Reviewers) > 0 && len(r.Keys) > 0) {
		return
	}
	ctx := rv.ctx
	_ = workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "who may acknowledge the fairness review (RBAC)"), pipeline.ActApprovers,
		pipeline.ApproversInput{Model: r.Model}).Get(ctx, &r.Reviewers)
	_ = workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "keys that verify review attestations"), pipeline.ActAttestKeys,
		pipeline.AttestationKeysInput{Model: r.Model}).Get(ctx, &r.Keys)
}

// arm escalates the open review at its deadline unless it is acknowledged before.
func (rv *reviews) arm() {
	r := rv.st.Review
	if r.Escalated {
		return
	}
	workflow.Go(rv.ctx, func(ctx workflow.Context) {
		wait := max(r.Deadline.Sub(workflow.Now(ctx)), reviewTimeoutFloor)
		decided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.Decision != "" })
		if err != nil || decided {
			return
		}
		r.Escalated, r.EscalatedAt = true, workflow.Now(ctx)
		rv.event(ctx, "escalated")
	})
}

// event records a review's event (audit and reports/<model>/monitor/reviews/<id>.json) and
// notifies it; failures are logged, never fail the monitor.
func (rv *reviews) event(ctx workflow.Context, what string) {
	n := pipeline.ReviewNotice{Review: *rv.st.Review, Event: what}
	n.Review.Keys = nil
	log := workflow.GetLogger(ctx)
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "record the fairness review ("+what+")"), pipeline.ActRecordReview, n).Get(ctx, nil); err != nil {
		log.Error("fairness review: record", "event", what, "err", err)
	}
	if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePolicy, "notify the fairness review ("+what+")"), pipeline.ActNotifyReview, n).Get(ctx, nil); err != nil {
		log.Error("fairness review: notify", "event", what, "err", err)
	}
}

// check accepts an acknowledgement only of the open review, with a reason, a known decision
// and a valid attestation of exactly it by someone who may approve the model.
func (rv *reviews) check(ctx workflow.Context, req pipeline.ReviewAck) (pipeline.Attested, error) {
	r := rv.st.Review
	switch {
	case r == nil:
		return pipeline.Attested{}, errors.New("the monitor of " + rv.st.Spec.Model + " has no open fairness review")
	case r.Decision != "":
		return pipeline.Attested{}, fmt.Errorf("review %s was already decided (%s by %s)", r.ID, r.Decision, r.By)
	case req.Review != r.ID:
		return pipeline.Attested{}, fmt.Errorf("the open review is %s, not %q", r.ID, req.Review)
	case !slices.Contains([]string{pipeline.ReviewAccept, pipeline.ReviewRetrain, pipeline.ReviewRollback}, req.Decision):
		return pipeline.Attested{}, fmt.Errorf("decision %q is not accept, retrain or rollback", req.Decision)
	case strings.TrimSpace(req.Reason) == "":
		return pipeline.Attested{}, errors.New("a reason is required")
	case req.Attestation == "":
		return pipeline.Attested{}, errors.New("an attested decision is required: acknowledge through the control-plane API (driftline monitor ack, with DRIFTLINE_TOKEN)")
	case len(r.Keys) == 0:
		return pipeline.Attested{}, errors.New("the monitor has no attestation keys to verify the decision (start the pipeline worker with --attestation-keys)")
	}
	// Pure: a signature check and JSON decoding of the token, the same on every replay.
	//workflowcheck:ignore
	att, err := pipeline.VerifyAttestation(req.Attestation, r.Keys, workflow.Now(ctx))
	switch {
	case err != nil:
		return att, err
	case (att.Kind != pipeline.KindReview && att.Kind != "") || att.Model != r.Model || att.Review != r.ID || att.Version != r.Version || att.Decision != req.Decision:
		return att, fmt.Errorf("%w: it attests %s of review %q (%s v%d), this is %s of review %s (%s v%d)",
			pipeline.ErrAttestation, att.Decision, att.Review, att.Model, att.Version, req.Decision, r.ID, r.Model, r.Version)
	case !among(r.Reviewers, att.Subject, att.Groups):
		return att, fmt.Errorf("%q (groups %v) may not acknowledge reviews of model %s: reviewers are %s", att.Subject, att.Groups, r.Model, strings.Join(r.Reviewers, ", "))
	}
	return att, nil
}

// acknowledge takes the decision: accept changes nothing, retrain starts the loop (as the
// monitor's triggers do), rollback puts the previous production version back if the reviewed
// one is still production. The review is then closed and kept among the last 20.
func (rv *reviews) acknowledge(ctx workflow.Context, req pipeline.ReviewAck) (string, error) {
	att, err := rv.check(ctx, req)
	if err != nil { // the state changed since the validator ran
		return "", err
	}
	r := rv.st.Review
	r.Decision, r.By, r.Groups, r.Reason, r.DecidedAt, r.AttestationID = req.Decision, att.Subject, att.Groups, att.Reason, workflow.Now(ctx), att.ID
	why := fmt.Sprintf("fairness review %s (disparate impact of %s %.3f [%.3f, %.3f] under %.2f): %s by %s: %s",
		r.ID, r.Attribute, r.DisparateImpact, r.Low, r.High, r.Floor, r.Decision, r.By, r.Reason)
	switch req.Decision {
	case pipeline.ReviewAccept:
		r.Outcome = "accepted: nothing changed"
	case pipeline.ReviewRetrain:
		run := startLoop(ctx, *rv.st, why, r.Report)
		rv.st.Runs = appendRun(rv.st.Runs, run)
		r.Outcome = "retrain: " + run.Reason
		if run.Started {
			r.Outcome = "retrain: run " + run.RunID + " started"
		}
	case pipeline.ReviewRollback:
		var out string
		if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePromote, "roll back for the fairness review"), pipeline.ActReviewRollback,
			pipeline.ReviewRollbackInput{Model: r.Model, Review: r.ID, Actor: r.By, Reason: why, FromVersion: r.Version,
				Attestation: req.Attestation, Origin: rv.st.Origin}).Get(ctx, &out); err != nil {
			r.Outcome = "rollback failed: " + err.Error()
		} else {
			r.Outcome = out
		}
	}
	rv.event(ctx, "closed")
	rv.st.Reviews = append(rv.st.Reviews, *r)
	if len(rv.st.Reviews) > 20 {
		rv.st.Reviews = rv.st.Reviews[len(rv.st.Reviews)-20:]
	}
	for i := range rv.st.Reviews {
		rv.st.Reviews[i].Keys = nil
	}
	rv.st.Review = nil
	return r.ID + " " + r.Decision + " by " + r.By + ": " + r.Outcome, nil
}

func appendRun(runs []pipeline.MonitorRun, run pipeline.MonitorRun) []pipeline.MonitorRun {
	runs = append(runs, run)
	if len(runs) > 20 {
		runs = runs[len(runs)-20:]
	}
	return runs
}
