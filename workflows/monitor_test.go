package workflows

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// The monitor's decisions over 100 windows (the window results scripted: what they hold is
// the activity's, tested on MinIO in activities.TestMonitorWindowOnMinIO): one drifted window
// starts nothing, two in a row start the loop once (forced, by the monitor, with the reason
// and the report in its memo), a trigger while that run is in progress starts no second one,
// a live MAE breach and an estimated one (before labels) are reasons too; the marks each window returns are the next one's input,
// and after 100 windows the monitor continues as new with its state.
func TestMonitorStartsTheLoopOnSustainedDriftOrLiveMAE(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Monitoring.Interval.Duration = time.Minute
	var mu sync.Mutex
	var inputs []pipeline.MonitorWindowInput
	window := func(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
		mu.Lock()
		defer mu.Unlock()
		inputs = append(inputs, in)
		n := len(inputs)
		res := pipeline.MonitorWindowResult{Version: 1, Requests: 500, ReportURI: "s3://b/reports/demand/monitor/w.json",
			Predictions: pipeline.LogMark{WrittenNanos: int64(n), Key: "p"}, Labels: pipeline.LogMark{WrittenNanos: int64(n), Key: "l"}}
		switch n {
		case 2, 4, 5, 6, 7: // 2 alone; 4-5 start the loop; 6-7 find it running
			res.Drifted, res.DriftScore, res.Why = true, 0.4, "price drifted"
		case 30: // a classifier's accuracy estimated from its calibrated scores (CBPE)
			res.EstimatedAccuracyBreach, res.EstimatedAccuracy = true, 0.71
		case 60:
			res.MAEBreach, res.LiveMAE, res.Labelled = true, 4.2, 300
		case 95: // no labels yet: the loss estimator's estimate breaches
			res.EstimateBreach, res.EstimatedMAE = true, 5.1
		}
		return res, nil
	}
	var runs []pipeline.RunInput
	var memos []string
	loop := func(ctx workflow.Context, in pipeline.RunInput) error {
		runs = append(runs, in)
		memos = append(memos, in.Reason)
		return workflow.Sleep(ctx, 20*time.Minute) // in progress for 20 windows
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	env.RegisterWorkflowWithOptions(loop, workflow.RegisterOptions{Name: pipeline.ContinuousTraining})
	env.RegisterActivityWithOptions(window, activity.RegisterOptions{Name: pipeline.ActMonitorWindow})
	env.ExecuteWorkflow(pipeline.MonitorWorkflow, pipeline.MonitorInput{Spec: sp, RunFrom: "2026-10-03", RunTo: "2026-10-30", RequestedBy: "ops"})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continues as new: %v", env.GetWorkflowError())

	require.Len(t, inputs, MonitorWindowsPerRun)
	for i := 1; i < len(inputs); i++ {
		require.Equal(t, int64(i), inputs[i].Predictions.WrittenNanos, "window %d starts at the marks window %d returned", i+1, i)
		require.Equal(t, int64(i), inputs[i].Labels.WrittenNanos)
	}
	require.Len(t, runs, 4, "one run for the drift (not a second while it ran), one for the estimated accuracy, one for the live MAE, one for the estimate")
	for _, r := range runs {
		require.True(t, r.Force)
		require.Equal(t, "monitor/demand", r.RequestedBy)
		require.Equal(t, "2026-10-03", r.From)
	}
	var state pipeline.MonitorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &state))
	require.Equal(t, MonitorWindowsPerRun, state.Windows)
	require.Equal(t, int64(MonitorWindowsPerRun), state.Predictions.WrittenNanos, "the marks carry over")
	require.Len(t, state.Runs, 5)
	require.True(t, state.Runs[0].Started)
	require.Contains(t, state.Runs[0].Reason, "live input drift in 2 windows in a row")
	require.False(t, state.Runs[1].Started)
	require.Contains(t, state.Runs[1].Reason, "already in progress")
	require.True(t, state.Runs[2].Started)
	require.Contains(t, state.Runs[2].Reason, "estimated accuracy 0.710 (CBPE, before labels)")
	require.True(t, state.Runs[3].Started)
	require.Contains(t, state.Runs[3].Reason, "live MAE 4.200")
	require.True(t, state.Runs[4].Started)
	require.Contains(t, state.Runs[4].Reason, "estimated MAE 5.100 (loss estimator, before labels)")
	require.Equal(t, state.Runs[0].Reason+" (report s3://b/reports/demand/monitor/w.json)", memos[0], "the run says why it was started, with the evidence")
	require.True(t, strings.HasPrefix(memos[2], "live MAE"))
}

// ackAs is an acknowledgement with the API's attestation of it (signed with the test key).
func ackAs(review, decision, sub string, groups []string, version int, reason string, opts ...func(*pipeline.Attested)) pipeline.ReviewAck {
	a := pipeline.Attested{Model: "demand", Version: version, Review: review, Decision: decision, Subject: sub, Groups: groups, Reason: reason,
		IssuedAt: time.Now().Unix(), Expires: time.Now().Add(72 * time.Hour).Unix(), ID: fmt.Sprintf("jti-%s-%s-%d", sub, review, time.Now().UnixNano()), Issuer: "test"}
	for _, o := range opts {
		o(&a)
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	signing := enc(map[string]string{"alg": "EdDSA", "kid": "test", "typ": pipeline.AttestationType}) + "." + enc(a)
	token := signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(attestSeed, []byte(signing)))
	return pipeline.ReviewAck{Review: review, Decision: decision, Reason: reason, Attestation: token}
}

// A fairness breach opens a human review instead of a run: it is recorded and notified, only
// an attested acknowledgement of exactly it by a reviewer is taken (claimed names, other
// reviews, other decisions, non-reviewers are refused), and the decision is carried out
// (rollback of the reviewed version, retrain: the loop); unacknowledged past
// monitoring.review_timeout it escalates, once; one review is open at a time, and an open
// review carries over continue-as-new.
func TestMonitorFairnessBreachOpensAReviewThatEscalates(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Monitoring.Interval.Duration = time.Minute
	sp.Monitoring.ReviewTimeout.Duration = 10 * time.Minute
	var mu sync.Mutex
	n := 0
	window := func(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		res := pipeline.MonitorWindowResult{Version: 2, Requests: 500, ReportURI: fmt.Sprintf("s3://b/reports/demand/monitor/w%d.json", n)}
		switch n {
		case 3, 4, 10, 30, 31: // 4 and 31 while a review is open: no second one
			res.FairnessBelowMin, res.DisparateImpact, res.DisparateImpactLow, res.DisparateImpactHigh = true, 0.62, 0.55, 0.70
		}
		return res, nil
	}
	var events []pipeline.ReviewNotice
	var rollbacks []pipeline.ReviewRollbackInput
	record := func(_ context.Context, n pipeline.ReviewNotice) error {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, n)
		return nil
	}
	var notified []string
	notify := func(_ context.Context, n pipeline.ReviewNotice) error {
		mu.Lock()
		defer mu.Unlock()
		notified = append(notified, n.Review.ID+" "+n.Event)
		return nil
	}
	rollback := func(_ context.Context, in pipeline.ReviewRollbackInput) (string, error) {
		rollbacks = append(rollbacks, in)
		return "production rolled back from v2 to v1", nil
	}
	var runs []pipeline.RunInput
	loop := func(ctx workflow.Context, in pipeline.RunInput) error {
		runs = append(runs, in)
		return nil
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	env.RegisterWorkflowWithOptions(loop, workflow.RegisterOptions{Name: pipeline.ContinuousTraining})
	env.RegisterActivityWithOptions(window, activity.RegisterOptions{Name: pipeline.ActMonitorWindow})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.ApproversInput) ([]string, error) {
		return []string{"user:alice", "group:ml-platform"}, nil
	}, activity.RegisterOptions{Name: pipeline.ActApprovers})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.AttestationKeysInput) ([]pipeline.AttestationKey, error) {
		return []pipeline.AttestationKey{testKey()}, nil
	}, activity.RegisterOptions{Name: pipeline.ActAttestKeys})
	env.RegisterActivityWithOptions(record, activity.RegisterOptions{Name: pipeline.ActRecordReview})
	env.RegisterActivityWithOptions(notify, activity.RegisterOptions{Name: pipeline.ActNotifyReview})
	env.RegisterActivityWithOptions(rollback, activity.RegisterOptions{Name: pipeline.ActReviewRollback})

	status := func() pipeline.MonitorStatus {
		v, err := env.QueryWorkflow(pipeline.QueryMonitor)
		require.NoError(t, err)
		var st pipeline.MonitorStatus
		require.NoError(t, v.Get(&st))
		return st
	}
	send := func(ack pipeline.ReviewAck, want string) {
		env.UpdateWorkflow(pipeline.UpdateAcknowledge, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {
				if want != "" {
					t.Errorf("accepted %s of %s, want refused with %q", ack.Decision, ack.Review, want)
				}
			},
			OnReject: func(err error) {
				if want == "" {
					t.Errorf("refused %s: %v", ack.Decision, err)
				} else if !strings.Contains(err.Error(), want) {
					t.Errorf("refused with %q, want %q", err, want)
				}
			},
			OnComplete: func(any, error) {},
		}, ack)
	}
	var first, second string
	env.RegisterDelayedCallback(func() { // review 1 is open (window 3); window 4 opened none
		st := status()
		require.NotNil(t, st.Review, "window 3's breach opened a review")
		first = st.Review.ID
		require.Equal(t, 2, st.Review.Version)
		require.Equal(t, []string{"user:alice", "group:ml-platform"}, st.Review.Reviewers)
		require.Empty(t, st.Review.Keys, "the status does not carry the keys")
		require.False(t, st.Review.Escalated)
		claimed := ackAs(first, "rollback", "alice", nil, 2, "north is under-served")
		claimed.Attestation = ""
		send(claimed, "an attested decision is required")
		send(ackAs(first, "rollback", "mallory", nil, 2, "me"), `"mallory" (groups []) may not acknowledge`)
		send(ackAs("fairness-other", "rollback", "alice", nil, 2, "x"), "the open review is "+first)
		swapped := ackAs(first, "accept", "alice", nil, 2, "ok")
		swapped.Decision = "rollback"
		send(swapped, "it attests accept")
		send(ackAs(first, "ignore", "alice", nil, 2, "x"), `decision "ignore" is not accept`)
		send(ackAs(first, "rollback", "alice", nil, 1, "x"), "(demand v1)")
		send(ackAs(first, "rollback", "alice", nil, 2, "x", func(a *pipeline.Attested) { a.Expires = time.Now().Add(-time.Minute).Unix() }), "expired")
		send(ackAs(first, "rollback", "alice", nil, 2, ""), "a reason is required")
		send(ackAs(first, "rollback", "alice", nil, 2, "north is under-served"), "")
	}, 5*time.Minute+30*time.Second)
	env.RegisterDelayedCallback(func() {
		send(ackAs(first, "rollback", "alice", nil, 2, "again"), "has no open fairness review")
		st := status()
		require.Nil(t, st.Review)
		require.Len(t, st.Reviews, 1)
		require.Equal(t, "rollback", st.Reviews[0].Decision)
		require.Equal(t, "alice", st.Reviews[0].By)
		require.Equal(t, "production rolled back from v2 to v1", st.Reviews[0].Outcome)
	}, 6*time.Minute+30*time.Second)
	env.RegisterDelayedCallback(func() { // review 2 (window 10) is open, not yet due
		st := status()
		require.NotNil(t, st.Review)
		second = st.Review.ID
		require.NotEqual(t, first, second)
		require.False(t, st.Review.Escalated)
	}, 15*time.Minute+30*time.Second)
	env.RegisterDelayedCallback(func() { // 10 minutes after it opened: escalated
		st := status()
		require.NotNil(t, st.Review)
		require.True(t, st.Review.Escalated, "unacknowledged past review_timeout")
		send(ackAs(second, "retrain", "erin", []string{"ml-platform"}, 2, "retrain with the new regions"), "")
	}, 21*time.Minute+30*time.Second)
	env.ExecuteWorkflow(pipeline.MonitorWorkflow, pipeline.MonitorInput{Spec: sp, RequestedBy: "ops", Origin: "the-api-origin"})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continues as new: %v", env.GetWorkflowError())

	require.Len(t, rollbacks, 1)
	// The rollback carries the acknowledgement and the monitor's origin: the activity verifies
	// both with the worker's keys before it touches production.
	require.NotEmpty(t, rollbacks[0].Attestation)
	require.Equal(t, pipeline.ReviewRollbackInput{Model: "demand", Review: first, Actor: "alice", FromVersion: 2, Reason: rollbacks[0].Reason,
		Attestation: rollbacks[0].Attestation, Origin: "the-api-origin"}, rollbacks[0])
	require.Contains(t, rollbacks[0].Reason, "disparate impact of region 0.620 [0.550, 0.700] under 0.80): rollback by alice: north is under-served")
	require.Len(t, runs, 1, "retrain started the loop")
	require.Contains(t, runs[0].Reason, "fairness review "+second)
	require.Contains(t, runs[0].Reason, "retrain by erin: retrain with the new regions")
	require.True(t, runs[0].Force)
	require.Equal(t, "the-api-origin", runs[0].Origin, "the runs the monitor starts carry its origin")
	var got []string
	for _, e := range events {
		got = append(got, e.Review.ID+" "+e.Event)
		require.Empty(t, e.Review.Keys, "records carry no keys")
	}
	var state pipeline.MonitorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &state))
	require.NotNil(t, state.Review, "window 30's review is still open at continue-as-new")
	third := state.Review.ID
	want := []string{first + " opened", first + " closed", second + " opened", second + " escalated", second + " closed", third + " opened", third + " escalated"}
	require.Equal(t, want, got, "one review at a time (windows 4 and 31 opened none), each escalated once")
	require.Equal(t, want, notified)
	require.True(t, state.Review.Escalated)
	require.Empty(t, state.Review.Keys, "keys are looked up again by the next run")
	require.Len(t, state.Reviews, 2)
	require.True(t, state.Reviews[1].Escalated)
	require.Equal(t, "erin", state.Reviews[1].By)
	require.Equal(t, []string{"ml-platform"}, state.Reviews[1].Groups)
	require.Contains(t, state.Reviews[1].Outcome, "retrain: run ")
}

// A closed partition signalled by the ingest worker runs the next window at once, not at the
// end of the interval; the status names the partition; a signal that arrives as the run
// continues as new is carried over, and the next run's first window does not wait.
func TestMonitorRunsAWindowAtOnceWhenAPartitionCloses(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Monitoring.Interval.Duration = time.Hour
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := env.Now()
	var at []time.Duration
	env.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	env.RegisterActivityWithOptions(func(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
		at = append(at, in.Until.Sub(start))
		return pipeline.MonitorWindowResult{Version: 1}, nil
	}, activity.RegisterOptions{Name: pipeline.ActMonitorWindow})
	closed := pipeline.NewPartition{Dataset: "retail_demand", Day: "2026-10-30", By: "driftline-ingest-retail"}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalNewPartition, closed) }, 10*time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(pipeline.QueryMonitor)
		require.NoError(t, err)
		var st pipeline.MonitorStatus
		require.NoError(t, v.Get(&st))
		require.Equal(t, &closed, st.Partition)
	}, 11*time.Minute)
	// The last window of the run is at 10 min + 99 h; a partition closes at its end.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalNewPartition, closed) }, 10*time.Minute+time.Duration(MonitorWindowsPerRun-1)*time.Hour)
	env.ExecuteWorkflow(pipeline.MonitorWorkflow, pipeline.MonitorInput{Spec: sp, RequestedBy: "ops"})
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continues as new: %v", env.GetWorkflowError())
	require.Len(t, at, MonitorWindowsPerRun)
	require.Equal(t, 10*time.Minute, at[0], "the first window when the partition closed, not after the hour")
	require.Equal(t, 10*time.Minute+time.Hour, at[1], "then the interval again")
	var state pipeline.MonitorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &state))
	require.True(t, state.Pending, "the signal at the run's end is carried over")
	require.Equal(t, "2026-10-30", state.Partition.Day)
}

// A Temporal client starts its own monitor whose input carries an open fairness review with
// itself as the reviewer and its own key: the monitor replaces both with the worker's (RBAC
// and the API's keys), so the client's self-signed acknowledgement is refused and nothing
// reaches production.
func TestASelfStartedMonitorCannotAcknowledgeItsOwnReview(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Monitoring.Interval.Duration = time.Minute
	_, mallory, _ := ed25519.GenerateKey(nil)
	malloryKey := pipeline.AttestationKey{KID: "mallory", PublicKey: base64.RawURLEncoding.EncodeToString(mallory.Public().(ed25519.PublicKey))}
	forged := &pipeline.FairnessReview{ID: "fairness-forged", Model: "demand", Version: 2, OpenedAt: time.Now(), Deadline: time.Now().Add(time.Hour),
		Reviewers: []string{"user:mallory"}, Keys: []pipeline.AttestationKey{malloryKey}}
	var rollbacks int
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
		return pipeline.MonitorWindowResult{Version: 2, Requests: 500}, nil
	}, activity.RegisterOptions{Name: pipeline.ActMonitorWindow})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.ApproversInput) ([]string, error) {
		return []string{"user:alice"}, nil
	}, activity.RegisterOptions{Name: pipeline.ActApprovers})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.AttestationKeysInput) ([]pipeline.AttestationKey, error) {
		return []pipeline.AttestationKey{testKey()}, nil
	}, activity.RegisterOptions{Name: pipeline.ActAttestKeys})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.ReviewNotice) error { return nil }, activity.RegisterOptions{Name: pipeline.ActRecordReview})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.ReviewNotice) error { return nil }, activity.RegisterOptions{Name: pipeline.ActNotifyReview})
	env.RegisterActivityWithOptions(func(context.Context, pipeline.ReviewRollbackInput) (string, error) {
		rollbacks++
		return "rolled back", nil
	}, activity.RegisterOptions{Name: pipeline.ActReviewRollback})
	// mallory's acknowledgement, signed with mallory's key, as a reviewer mallory named.
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	a := pipeline.Attested{Kind: pipeline.KindReview, Model: "demand", Version: 2, Review: forged.ID, Decision: pipeline.ReviewRollback,
		Subject: "mallory", Reason: "x", IssuedAt: time.Now().Unix(), Expires: time.Now().Add(time.Hour).Unix(), ID: "jti-m", Issuer: "mallory"}
	signing := enc(map[string]string{"alg": "EdDSA", "kid": "mallory", "typ": pipeline.AttestationType}) + "." + enc(a)
	self := pipeline.ReviewAck{Review: forged.ID, Decision: pipeline.ReviewRollback, Reason: "x",
		Attestation: signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(mallory, []byte(signing)))}
	refused, early := "", ""
	env.RegisterDelayedCallback(func() { // with the start, and later
		env.UpdateWorkflow(pipeline.UpdateAcknowledge, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { t.Error("a self-signed acknowledgement sent with the start was accepted") },
			OnReject: func(err error) { early = err.Error() }, OnComplete: func(any, error) {},
		}, self)
	}, 0)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(pipeline.UpdateAcknowledge, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { t.Error("a self-signed acknowledgement was accepted") },
			OnReject: func(err error) { refused = err.Error() }, OnComplete: func(any, error) {},
		}, self)
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 2*time.Minute)
	env.ExecuteWorkflow(pipeline.MonitorWorkflow, pipeline.MonitorInput{Spec: sp, RequestedBy: "mallory", Review: forged})
	require.Contains(t, refused, `unknown key "mallory"`)
	require.NotEmpty(t, early)
	require.Zero(t, rollbacks, "production untouched")
}
