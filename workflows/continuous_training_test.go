package workflows

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/canary"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

type ctSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env            *testsuite.TestWorkflowEnvironment
	approversDelay time.Duration // how long the RBAC lookup takes (virtual time)
	lastApproval   pipeline.ApprovalRecord
}

func TestContinuousTraining(t *testing.T) { suite.Run(t, new(ctSuite)) }

// Activity receivers: nil pointers that name the registered methods for the mocks.
var (
	data  *activities.Data
	train *activities.Training
	reg   *activities.Registry
	pol   *activities.Policy
	can   *activities.Canary
)

func (s *ctSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	Register(s.env)
	s.env.RegisterActivity(&activities.Data{})
	s.env.RegisterActivity(&activities.Training{})
	s.env.RegisterActivity(&activities.Registry{})
	s.env.RegisterActivity(&activities.Policy{})
	s.env.RegisterActivity(&activities.Canary{})
	// The external trainer's activity type (implemented outside Driftline; mocked per test).
	s.env.RegisterActivityWithOptions(func(context.Context, pipeline.ExternalTrainInput) (pipeline.ExternalTrainOutput, error) {
		return pipeline.ExternalTrainOutput{}, errors.New("not mocked")
	}, activity.RegisterOptions{Name: pipeline.ExternalTrainActivity})
	s.env.OnActivity(reg.RecordOutcome, mock.Anything, mock.Anything).Return(nil)
	s.lastApproval = pipeline.ApprovalRecord{}
	s.env.OnActivity(reg.RecordApproval, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		s.lastApproval = args.Get(1).(pipeline.ApprovalRecord)
	}).Return(nil).Maybe()
	s.approversDelay = 0
	s.env.OnActivity(pol.Approvers, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return s.approversDelay }).
		Return([]string{"group:ml-platform", "user:alice", "user:bob"}, nil).Maybe()
	s.env.OnActivity(pol.NotifyApproval, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnActivity(pol.AttestationKeys, mock.Anything, mock.Anything).Return([]pipeline.AttestationKey{testKey()}, nil).Maybe()
}

func (s *ctSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func testSpec(approval bool) spec.Spec {
	sp, err := spec.Load("../examples/demand.yaml")
	if err != nil {
		panic(err)
	}
	sp.Approval.Required = approval
	sp.Canary.Steps = nil // one step; the ramp tests set their own
	return sp
}

func input(approval bool) pipeline.RunInput {
	return pipeline.RunInput{Spec: testSpec(approval), From: "2026-09-01", To: "2026-09-28", RequestedBy: "test"}
}

// happyPath mocks steps 1-6; drift decides whether a champion exists and drifted.
func (s *ctSuite) happyPath(reference int, drifted bool) {
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{Key: "snapshots/d/r.json", URI: "s3://b/snapshots/d/r.json", Files: 28, Rows: 28000}, nil)
	s.env.OnActivity(data.Inspect, mock.Anything, mock.Anything).Return(pipeline.InspectResult{
		Validation: pipeline.ValidateResult{ReportURI: "s3://b/v.json", RowsRead: 28000, RowsAccepted: 27990, RowsQuarantined: 10},
		Drift:      pipeline.DriftResult{ReferenceVersion: reference, Drifted: drifted, Score: 0.4, ReportURI: "s3://b/d.json", Why: "test"},
		ProfileKey: "reports/p.json", BinsKey: "reports/b.json"}, nil)
	// One pass: the separate validate and drift activities of older runs never run.
	s.env.OnActivity(data.Validate, mock.Anything, mock.Anything).Return(pipeline.ValidateResult{}, nil).Never()
	s.env.OnActivity(data.Detect, mock.Anything, mock.Anything).Return(pipeline.DriftResult{}, nil).Never()
}

func (s *ctSuite) trainedAndRegistered(version int) {
	s.env.OnActivity(train.Train, mock.Anything, mock.Anything).Return(pipeline.TrainResult{ArtifactKey: "a", ProfileKey: "p", TrainRows: 21000, TrainRMSE: 1.5}, nil)
	s.env.OnActivity(train.Evaluate, mock.Anything, mock.Anything).Return(pipeline.EvaluateResult{CandidateMAE: 1.6, ChampionMAE: 7.2, HasChampion: version > 1, HoldoutRows: 7000, ReportURI: "s3://b/e.json"}, nil).Maybe() // or MergeEvaluations
	s.env.OnActivity(reg.Register, mock.Anything, mock.Anything).Return(pipeline.RegisterResult{Version: version, MetadataURI: "s3://b/m.json"}, nil)
}

func (s *ctSuite) allow(approval bool) {
	s.env.OnActivity(pol.Check, mock.Anything, mock.Anything).Return(pipeline.PolicyResult{Allow: true, ApprovalRequired: approval, Revision: "r"}, nil)
}

func (s *ctSuite) result() (pipeline.RunResult, pipeline.Status) {
	s.True(s.env.IsWorkflowCompleted())
	var res pipeline.RunResult
	if err := s.env.GetWorkflowError(); err == nil {
		s.NoError(s.env.GetWorkflowResult(&res))
	}
	q, err := s.env.QueryWorkflow(pipeline.QueryStatus)
	s.NoError(err)
	var st pipeline.Status
	s.NoError(q.Get(&st))
	return res, st
}

func (s *ctSuite) TestFirstRunPromotesWithoutCanary() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(false)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.MatchedBy(func(in pipeline.DeployInput) bool { return in.Version == 1 })).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal(1, res.Version)
	s.Equal(pipeline.StageDone, st.Stage)
	s.Len(st.Steps, 8) // snapshot validate drift train evaluate register policy promote
}

// An external trainer: the train step goes to the trainer's task queue under the documented
// activity name, with the documented input, and its artifact is adopted before evaluation.
func (s *ctSuite) TestExternalTrainerOnItsOwnTaskQueue() {
	s.happyPath(0, false)
	s.env.OnActivity(train.Train, mock.Anything, mock.Anything).Return(pipeline.TrainResult{}, nil).Never()
	ein := pipeline.ExternalTrainInput{Model: "demand", RunID: "r", Features: []string{"price"}, HoldoutFrom: "2026-09-22",
		OutputURI: "s3://b/reports/demand/r/external/model.json"}
	s.env.OnActivity(train.ExternalInput, mock.Anything, mock.Anything).Return(ein, nil).Once()
	var gotQueue string
	s.env.OnActivity(pipeline.ExternalTrainActivity, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in pipeline.ExternalTrainInput) (pipeline.ExternalTrainOutput, error) {
			gotQueue = activity.GetInfo(ctx).TaskQueue
			s.Equal(ein, in)
			return pipeline.ExternalTrainOutput{ArtifactURI: in.OutputURI, Format: pipeline.FormatXGBoostJSON, TrainRows: 21000}, nil
		}).Once()
	s.env.OnActivity(train.AdoptExternal, mock.Anything, mock.MatchedBy(func(in pipeline.AdoptInput) bool {
		return in.TaskQueue == "python-trainers" && in.Output.Format == pipeline.FormatXGBoostJSON && in.Output.ArtifactURI == ein.OutputURI
	})).Return(pipeline.TrainResult{ArtifactKey: "a", ProfileKey: "p", TrainRows: 21000}, nil).Once()
	s.env.OnActivity(train.Evaluate, mock.Anything, mock.MatchedBy(func(in pipeline.EvaluateInput) bool { return in.ArtifactKey == "a" })).
		Return(pipeline.EvaluateResult{CandidateMAE: 1.6, HoldoutRows: 7000, ReportURI: "s3://b/e.json"}, nil)
	s.env.OnActivity(reg.Register, mock.Anything, mock.Anything).Return(pipeline.RegisterResult{Version: 1, MetadataURI: "s3://b/m.json"}, nil)
	s.allow(false)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	in := input(false)
	in.Spec.Trainer.TaskQueue = "python-trainers"
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("python-trainers", gotQueue)
}

func (s *ctSuite) TestNoDriftStopsBeforeTraining() {
	s.happyPath(1, false)
	s.env.OnActivity(train.Train, mock.Anything, mock.Anything).Return(pipeline.TrainResult{}, nil).Never()
	s.env.OnActivity(reg.Register, mock.Anything, mock.Anything).Return(pipeline.RegisterResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomeNoDrift, res.Outcome)
}

func (s *ctSuite) TestForceRetrainsWithoutDrift() {
	s.happyPath(1, false)
	s.trainedAndRegistered(2)
	s.env.OnActivity(pol.Check, mock.Anything, mock.Anything).Return(pipeline.PolicyResult{Allow: false, Reasons: []string{"x"}}, nil)
	in := input(false)
	in.Force = true
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	res, _ := s.result()
	s.Equal(pipeline.OutcomeRejectedByPolicy, res.Outcome)
}

func (s *ctSuite) TestFailedValidationIsNonRetryableAndNamesTheFile() {
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{Key: "k"}, nil)
	s.env.OnActivity(data.Inspect, mock.Anything, mock.Anything).Return(pipeline.InspectResult{},
		temporal.NewNonRetryableApplicationError("validate: file datasets/x/part.parquet column price: type BYTE_ARRAY is not numeric", pipeline.ErrTypeInvalidData, nil)).Once()
	s.env.OnActivity(train.Train, mock.Anything, mock.Anything).Return(pipeline.TrainResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	err := s.env.GetWorkflowError()
	s.Error(err)
	var appErr *temporal.ApplicationError
	s.True(errors.As(err, &appErr))
	s.Equal(string(pipeline.OutcomeFailedValidation), appErr.Type())
	s.True(appErr.NonRetryable())
	s.Contains(err.Error(), "datasets/x/part.parquet column price")
	_, st := s.result()
	s.Equal(pipeline.OutcomeFailedValidation, st.Outcome)
}

func (s *ctSuite) TestRejectedByPolicyNeverDeploys() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.env.OnActivity(pol.Check, mock.Anything, mock.Anything).Return(pipeline.PolicyResult{Allow: false, Reasons: []string{"candidate MAE 7 exceeds the threshold 6"}}, nil)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	res, _ := s.result()
	s.Equal(pipeline.OutcomeRejectedByPolicy, res.Outcome)
	s.Contains(res.Reason, "exceeds the threshold")
}

// canary mocks a canary whose evaluations return the given decisions in order.
func (s *ctSuite) canary(decisions ...pipeline.CanaryDecision) {
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1, Canary: 2}, nil).Once()
	for _, d := range decisions {
		s.env.OnActivity(can.EvaluateCanary, mock.Anything, mock.Anything).Return(pipeline.CanaryEvalResult{Decision: d, Reason: "test " + string(d)}, nil).Once()
	}
}

func (s *ctSuite) TestApprovalGrantedByUpdateThenCanaryPromotes() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(true)
	s.canary(pipeline.CanaryWait, pipeline.CanaryPromote)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 2}, nil).Once()
	s.env.OnActivity(reg.AbortCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	bad := []pipeline.Approval{
		attested("approve", "mallory", nil, 2, "ok"),  // not an approver
		attested("approve", "alice", nil, 2, ""),      // no reason
		attested("approve", "alice", nil, 3, "ok"),    // wrong version
		{Approver: "alice", Reason: "ok", Version: 2}, // no attestation (break-glass is off)
		attested("reject", "alice", nil, 2, "ok"),     // attests a rejection, sent as approve
	}
	s.env.RegisterDelayedCallback(func() {
		for _, req := range bad {
			s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
				OnAccept:   func() { s.Fail("bad approval accepted", "%+v", req) },
				OnReject:   func(error) {},
				OnComplete: func(any, error) {},
			}, req)
		}
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("valid approval rejected", err.Error()) },
			OnComplete: func(any, error) {},
		}, attested("approve", "alice", nil, 2, "looks good"))
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { s.Fail("duplicate approval accepted") }, OnReject: func(error) {}, OnComplete: func(any, error) {},
		}, attested("approve", "bob", nil, 2, "me too"))
	}, time.Hour)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("alice", st.Approval.Approver)
	s.Len(st.Canary, 2)
}

// The forged approval: a client that reaches Temporal sends an approve Update
// claiming to be alice. Without the API's attestation it is refused, and so is every
// attestation that is not for exactly this run, version and decision, signed by the API's key,
// unexpired, and not used before.
func (s *ctSuite) TestForgedApprovalsAreRefused() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(true)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	forged := []struct {
		name string
		req  pipeline.Approval
		want string
	}{
		{"claimed name, no attestation", pipeline.Approval{Approver: "alice", Reason: "I am not really alice", Version: 1}, "an attested decision is required"},
		{"signed by another key", attested("approve", "alice", nil, 1, "ok", func(a *pipeline.Attested) { a.Issuer = "other-key" }), "bad signature"},
		{"for another run", attested("approve", "alice", nil, 1, "ok", func(a *pipeline.Attested) { a.RunID = "an-older-run" }), "in run an-older-run"},
		{"expired", attested("approve", "alice", nil, 1, "ok", func(a *pipeline.Attested) { a.Expires = time.Now().Add(-time.Minute).Unix() }), "expired"},
		{"tampered", func() pipeline.Approval {
			a := attested("approve", "alice", nil, 1, "ok")
			a.Attestation = a.Attestation[:len(a.Attestation)-4] + "AAAA"
			return a
		}(), "bad signature"},
	}
	valid := attested("approve", "alice", nil, 1, "evidence reviewed")
	s.env.RegisterDelayedCallback(func() {
		for _, f := range forged {
			s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
				OnAccept: func() { s.Fail("forged approval accepted", f.name) },
				OnReject: func(err error) { s.Contains(err.Error(), f.want, f.name) }, OnComplete: func(any, error) {},
			}, f.req)
		}
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { s.Fail("attested approval refused", err.Error()) }, OnComplete: func(any, error) {}}, valid)
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { s.Fail("the same attestation was accepted twice") }, OnReject: func(error) {}, OnComplete: func(any, error) {}}, valid)
	}, time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("alice", st.Approval.Approver)
	s.Equal(valid.Attestation, s.lastApproval.Attestation, "the audit record carries the attestation")
	s.NotEmpty(s.lastApproval.AttestationID)
	s.False(s.lastApproval.BreakGlass)
}

// Break-glass, where the spec allows it: accepted without attestation, recorded as break-glass
// (the activity names the Temporal client identity), never under the claimed approver.
func (s *ctSuite) TestBreakGlassApprovalIsRecordedAsSuch() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(true)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	in := input(true)
	in.Spec.Approval.BreakGlass = true
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "upd-1", &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { s.Fail(err.Error()) }, OnComplete: func(any, error) {}},
			pipeline.Approval{Approver: "alice", Reason: "API down, incident 42", Version: 1})
	}, time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("break-glass", st.Approval.Approver)
	s.True(st.Approval.BreakGlass)
	rec := s.lastApproval
	s.True(rec.BreakGlass)
	s.Equal("break-glass", rec.Approver, "never the claimed approver")
	s.Empty(rec.Attestation)
	s.Equal("upd-1", rec.MessageID, "the activity finds the sender's identity in history by the Update id")
	s.Equal("update", rec.Via)
}

func (s *ctSuite) TestApprovalBySignalIgnoresInvalidSignals() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(true)
	s.canary(pipeline.CanaryPromote)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 2}, nil).Once()
	s.env.OnActivity(pol.RecordIgnoredApproval, mock.Anything, mock.MatchedBy(func(in pipeline.IgnoredApproval) bool {
		return in.Approver == "mallory" && strings.Contains(in.Why, "may not approve")
	})).Return(nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(pipeline.SignalApproval, pipeline.ApprovalSignal{Approve: true, Approval: attested("approve", "mallory", nil, 2, "x")})
	}, time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(pipeline.SignalApproval, pipeline.ApprovalSignal{Approve: true, Approval: attested("approve", "bob", nil, 2, "fine")})
	}, 2*time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal(1, st.IgnoredSignals)
	s.Equal("bob", st.Approval.Approver)
}

func (s *ctSuite) TestApprovalByGroupMember() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(true)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{OnAccept: func() { s.Fail("no group, no approval") }, OnReject: func(error) {}, OnComplete: func(any, error) {}},
			attested("approve", "erin", []string{"interns"}, 1, "ok"))
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { s.Fail(err.Error()) }, OnComplete: func(any, error) {}},
			attested("approve", "erin", []string{"interns", "ml-platform"}, 1, "platform on call"))
	}, time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("erin", st.Approval.Approver)
	s.Equal([]string{"group:ml-platform", "user:alice", "user:bob"}, st.Approvers)
}

func (s *ctSuite) TestRejectedByApprover() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(true)
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(pipeline.UpdateReject, "", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { s.Fail(err.Error()) }, OnComplete: func(any, error) {}},
			attested("reject", "bob", nil, 2, "holiday freeze"))
	}, time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	res, _ := s.result()
	s.Equal(pipeline.OutcomeRejectedByApprover, res.Outcome)
	s.Contains(res.Reason, "holiday freeze")
}

func (s *ctSuite) TestApprovalTimeout() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(true)
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	start := s.env.Now()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	res, _ := s.result()
	s.Equal(pipeline.OutcomeApprovalTimeout, res.Outcome)
	s.GreaterOrEqual(s.env.Now().Sub(start), 24*time.Hour, "waited the spec's timeout (time skipped)")
}

func (s *ctSuite) TestCanaryBreachRollsBack() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(false)
	s.canary(pipeline.CanaryRollback)
	s.env.OnActivity(reg.AbortCanary, mock.Anything, mock.MatchedBy(func(in pipeline.DeployInput) bool { return in.Version == 2 })).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomeRolledBack, res.Outcome)
	s.Contains(res.Reason, "v1 stays in production")
}

func (s *ctSuite) TestCanaryInconclusiveRollsBack() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(false)
	s.canary(pipeline.CanaryWait, pipeline.CanaryWait, pipeline.CanaryWait)
	s.env.OnActivity(reg.AbortCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	res, _ := s.result()
	s.Equal(pipeline.OutcomeRolledBack, res.Outcome)
	s.Contains(res.Reason, "inconclusive after 3 bakes")
}

func (s *ctSuite) TestActivityFaultEndsAsFailed() {
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{}, errors.New("connection refused"))
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(false))
	s.Error(s.env.GetWorkflowError())
	_, st := s.result()
	s.Equal(pipeline.OutcomeFailed, st.Outcome)
}

func TestWindowDefaultsToYesterday(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	Register(env)
	env.RegisterActivity(&activities.Data{})
	env.RegisterActivity(&activities.Registry{})
	env.SetStartTime(time.Date(2026, 10, 31, 3, 0, 0, 0, time.UTC))
	var got pipeline.SnapshotInput
	env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.SnapshotInput) (pipeline.SnapshotResult, error) {
		got = in
		return pipeline.SnapshotResult{}, temporal.NewNonRetryableApplicationError("stop", pipeline.ErrTypeInvalidData, nil)
	})
	env.OnActivity(reg.RecordOutcome, mock.Anything, mock.Anything).Return(nil)
	in := input(false)
	in.From, in.To = "", ""
	env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	require.Equal(t, "2026-10-30", got.To)
	require.Equal(t, "2026-10-03", got.From)
}

func (s *ctSuite) TestInvalidSpecFailsBeforeAnyActivity() {
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{}, nil).Never()
	in := input(false)
	in.Spec.Features = append(in.Spec.Features, "not_in_contract")
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	err := s.env.GetWorkflowError()
	s.Error(err)
	s.Contains(err.Error(), `"not_in_contract" is not a contract column`)
	_, st := s.result()
	s.Equal(pipeline.OutcomeFailedValidation, st.Outcome)
}

// rampInput is a run whose canary ramps 5% -> 25% -> 50%.
func rampInput() pipeline.RunInput {
	in := input(false)
	in.Spec.Canary.Steps = []float64{0.05, 0.25, 0.5}
	return in
}

func (s *ctSuite) TestCanaryRampPromotesAfterAllSteps() {
	s.happyPath(1, true)
	s.trainedAndRegistered(2)
	s.allow(false)
	var shares []float64
	s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.DeployInput) (pipeline.DeployResult, error) {
		shares = append(shares, in.Share)
		return pipeline.DeployResult{Production: 1, Canary: 2}, nil
	}).Times(3)
	s.env.OnActivity(can.EvaluateCanary, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.CanaryEvalInput) (pipeline.CanaryEvalResult, error) {
		if in.Step == 2 && in.Bake == 1 {
			return pipeline.CanaryEvalResult{Decision: pipeline.CanaryWait, Reason: "labels pending"}, nil
		}
		return pipeline.CanaryEvalResult{Decision: pipeline.CanaryPromote, Step: in.Step, Reason: fmt.Sprintf("step %d ok", in.Step)}, nil
	}).Times(4)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 2}, nil).Once()
	s.env.OnActivity(reg.AbortCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
	start := s.env.Now()
	in := rampInput()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal([]float64{0.05, 0.25, 0.5}, shares)
	s.Len(st.Canary, 4)
	s.Contains(res.Reason, "passed 3 canary steps")
	s.GreaterOrEqual(s.env.Now().Sub(start), 4*in.Spec.Canary.Bake.Duration, "four bakes on durable timers (time skipped)")
}

// stepTraffic is a step's prediction log as serving writes it during a canary: n requests
// per route, each with the other model's paired answer and a label. bad spoils the
// candidate's answers in one way; the real judge (canary.Judge) then decides.
func stepTraffic(in pipeline.CanaryEvalInput, bad string) canary.Input {
	const n = 320
	var recs []predlog.Record
	labels := map[string]float64{}
	for i := range 2 * n {
		id := fmt.Sprintf("s%d-b%d-%d", in.Step, in.Bake, i)
		route, v, other := pipeline.CandidateRoute(in.Guardrails.Mode), in.Candidate, in.Production
		if i >= n {
			route, v, other = pipeline.RouteProduction, in.Production, in.Candidate
		}
		y := 10 + float64(i%7)
		errOf := func(version int) float64 { // the candidate errs like production unless bad says otherwise
			e := float64(i%5) - 2
			if version == in.Candidate && bad == "worse MAE" {
				e *= 3
			}
			return e
		}
		rec := predlog.Record{RequestID: id, Version: int32(v), Route: string(route), LatencyUs: 200, Prediction: y + errOf(v)}
		if v == in.Candidate && bad == "injected errors" && i%5 < 2 {
			rec.Error, rec.Prediction = "boom", 0
		}
		if v == in.Candidate && bad == "higher latency" && i%20 == 0 {
			rec.LatencyUs = 90_000
		}
		recs = append(recs, rec, predlog.Record{RequestID: id, Version: int32(other), Route: string(pipeline.RoutePaired), LatencyUs: 150, Prediction: y + errOf(other)})
		labels[id] = y
	}
	return canary.Input{Records: recs, Labels: labels, Candidate: in.Candidate, Production: in.Production, Step: in.Step, Share: in.Share, Guardrails: in.Guardrails}
}

// A bad candidate is rolled back at the first step that shows it, whatever the guardrail: the
// decision and its reason come from the real judge on the step's traffic, not from the mock.
func (s *ctSuite) TestCanaryRampRollsBackAtTheFirstBadStep() {
	for _, c := range []struct {
		bad    string
		badAt  int
		reason string
	}{
		{"injected errors", 1, "error rate 40.00% vs production 0.00%"},
		{"higher latency", 3, "p99 latency 90.000 ms vs production 0.200 ms"},
		{"worse MAE", 2, "live MAE"},
	} {
		s.Run(c.bad, func() {
			s.SetupTest()
			s.happyPath(1, true)
			s.trainedAndRegistered(2)
			s.allow(false)
			sets := 0
			s.env.OnActivity(reg.SetCanary, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.DeployInput) (pipeline.DeployResult, error) {
				sets++
				return pipeline.DeployResult{Production: 1, Canary: 2}, nil
			})
			s.env.OnActivity(can.EvaluateCanary, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.CanaryEvalInput) (pipeline.CanaryEvalResult, error) {
				bad := ""
				if in.Step == c.badAt {
					bad = c.bad
				}
				j := stepTraffic(in, bad)
				j.Guardrails.ProtectedAttribute, j.Guardrails.MinLabels = "", 300 // no models here for disparate impact
				return canary.Judge(j), nil
			})
			s.env.OnActivity(reg.AbortCanary, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
			s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{}, nil).Never()
			s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, rampInput())
			s.NoError(s.env.GetWorkflowError())
			res, st := s.result()
			s.Equal(pipeline.OutcomeRolledBack, res.Outcome)
			s.Contains(res.Reason, fmt.Sprintf("step %d at", c.badAt))
			s.Contains(res.Reason, c.reason)
			s.Equal(c.badAt, sets, "no step after the bad one")
			for _, ev := range st.Canary[:len(st.Canary)-1] {
				s.Equal(pipeline.CanaryPromote, ev.Decision, "the good steps passed the real judge: %s", ev.Reason)
			}
			s.env.AssertExpectations(s.T())
		})
	}
}

// The run shows awaiting_approval only once it can accept an approval: an approver who acts
// the moment the stage appears is accepted (the RBAC lookup may be slow).
func (s *ctSuite) TestApprovalStageAppearsOnlyWhenReady() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(true)
	s.approversDelay = time.Minute
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	for _, at := range []time.Duration{10 * time.Second, 30 * time.Second, 50 * time.Second, 70 * time.Second, 90 * time.Second} {
		s.env.RegisterDelayedCallback(func() {
			q, err := s.env.QueryWorkflow(pipeline.QueryStatus)
			s.NoError(err)
			var st pipeline.Status
			s.NoError(q.Get(&st))
			if st.Stage != pipeline.StageApproval || st.Approval != nil {
				return
			}
			s.Equal([]string{"group:ml-platform", "user:alice", "user:bob"}, st.Approvers, "the stage appears with its approvers")
			s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{OnAccept: func() {},
				OnReject: func(err error) { s.Fail("an approval sent when the stage showed was refused", err.Error()) }, OnComplete: func(any, error) {}},
				attested("approve", "alice", nil, st.CandidateVersion, "as soon as it showed"))
		}, at)
	}
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, input(true))
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("alice", st.Approval.Approver)
}

// The control-plane API's attestation key, as the tests sign with it.
var attestSeed = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func testKey() pipeline.AttestationKey {
	return pipeline.AttestationKey{KID: "test", PublicKey: base64.RawURLEncoding.EncodeToString(attestSeed.Public().(ed25519.PublicKey))}
}

// attested is an approval carrying an attestation signed with the test key (another key when
// an option sets Issuer "other-key") for the test environment's run, valid for three days
// (the tests skip time).
func attested(decision, sub string, groups []string, version int, reason string, opts ...func(*pipeline.Attested)) pipeline.Approval {
	a := pipeline.Attested{Model: "demand", Version: version, RunID: "default-test-run-id", Decision: decision, Subject: sub, Groups: groups,
		Reason: reason, IssuedAt: time.Now().Unix(), Expires: time.Now().Add(72 * time.Hour).Unix(), ID: fmt.Sprintf("jti-%s-%d-%d", sub, version, time.Now().UnixNano()), Issuer: "test"}
	key, kid := attestSeed, "test"
	for _, o := range opts {
		o(&a)
	}
	if a.Issuer == "other-key" {
		_, key, _ = ed25519.GenerateKey(nil)
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	signing := enc(map[string]string{"alg": "EdDSA", "kid": kid, "typ": pipeline.AttestationType}) + "." + enc(a)
	token := signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing)))
	// What the caller claims besides is ignored: the attestation is the identity.
	return pipeline.Approval{Approver: sub, Groups: groups, Reason: reason, Version: version, Attestation: token}
}

// A spec naming a feature service: the features step runs after the snapshot, and every later
// step reads its training set with the service's features added to the spec's; the version's
// reports name the training set's manifest.
func (s *ctSuite) TestFeatureServiceRunTrainsOnTheTrainingSet() {
	in := input(false)
	in.Spec.FeatureService = &spec.FeatureService{Repo: "retail", Name: "demand_forecast"}
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: 28, Rows: 28000}, nil)
	s.env.OnActivity(data.TrainingSet, mock.Anything, mock.MatchedBy(func(in pipeline.StepInput) bool {
		return in.SnapshotKey == "snapshots/d/r.json" && !slices.Contains(in.Spec.Features, "units_7d")
	})).Return(pipeline.TrainingSetResult{Key: "snapshots/d/r-features.json", Rows: 28000, Columns: []string{"units_7d", "price_rel_28d"},
		ReportURI: "s3://b/reports/demand/r/training_set.json", DefinitionsVersion: 3}, nil).Once()
	onSet := func(in pipeline.StepInput) bool {
		col, ok := in.Spec.Contract.Column("units_7d")
		return in.SnapshotKey == "snapshots/d/r-features.json" && slices.Contains(in.Spec.Features, "units_7d") &&
			slices.Contains(in.Spec.Features, "price") && ok && col.Nullable
	}
	s.env.OnActivity(data.Inspect, mock.Anything, mock.MatchedBy(onSet)).Return(pipeline.InspectResult{
		Validation: pipeline.ValidateResult{RowsRead: 28000, RowsAccepted: 28000}, Drift: pipeline.DriftResult{Why: "no reference"}}, nil).Once()
	s.env.OnActivity(train.Train, mock.Anything, mock.MatchedBy(func(in pipeline.TrainInput) bool { return onSet(in.StepInput) })).
		Return(pipeline.TrainResult{ArtifactKey: "a"}, nil).Once()
	s.env.OnActivity(train.Evaluate, mock.Anything, mock.MatchedBy(func(in pipeline.EvaluateInput) bool { return onSet(in.StepInput) })).
		Return(pipeline.EvaluateResult{CandidateMAE: 1.6, HoldoutRows: 7000}, nil).Once()
	s.env.OnActivity(reg.Register, mock.Anything, mock.MatchedBy(func(in pipeline.RegisterInput) bool {
		return onSet(in.StepInput) && in.Reports["training_set"] == "s3://b/reports/demand/r/training_set.json"
	})).Return(pipeline.RegisterResult{Version: 1}, nil).Once()
	s.allow(false)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal(pipeline.StageFeatures, st.Steps[1].Name)
	s.Equal(3, st.TrainingSet.DefinitionsVersion)
}

// The approval rules come from the policy step's governed decision, not from the run's own
// spec: the organisation refuses break-glass although the spec (which any Temporal client can
// write) allows it, and the run's attested requester may not approve it, even as an approver.
func (s *ctSuite) TestGovernedPolicyDecidesBreakGlassAndTheApprover() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.env.OnActivity(pol.Check, mock.Anything, mock.Anything).Return(pipeline.PolicyResult{Allow: true, ApprovalRequired: true, Revision: "r",
		Governed: true, DistinctApprover: true, Requester: "alice", BreakGlass: false}, nil)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	in := input(true)
	in.Spec.Approval.BreakGlass = true
	in.Spec.Approval.Approvers = []string{"alice", "bob"} // the spec narrows the RBAC approvers
	s.env.RegisterDelayedCallback(func() {
		for _, f := range []struct {
			name string
			req  pipeline.Approval
			want string
		}{
			{"break-glass the spec allows and the organisation does not", pipeline.Approval{Approver: "erin", Reason: "API down", Version: 1}, "break-glass is off"},
			{"the requester approving their own run", attested("approve", "alice", nil, 1, "looks good to me"), `"alice" requested this run and may not approve it`},
			{"an origin attestation passed off as an approval", attested("approve", "bob", nil, 1, "x", func(a *pipeline.Attested) { a.Kind = pipeline.KindRun }), "attestation refused"},
			{"an approver the spec does not name", attested("approve", "erin", []string{"ml-platform"}, 1, "x"), "names its approvers: alice, bob"},
		} {
			s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{
				OnAccept: func() { s.Fail("accepted", f.name) },
				OnReject: func(err error) { s.Contains(err.Error(), f.want, f.name) }, OnComplete: func(any, error) {},
			}, f.req)
		}
		s.env.UpdateWorkflow(pipeline.UpdateApprove, "", &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { s.Fail("another approver refused", err.Error()) }, OnComplete: func(any, error) {}},
			attested("approve", "bob", nil, 1, "evidence reviewed"))
	}, time.Minute)
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, st := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Equal("bob", st.Approval.Approver)
}

// The policy step receives the run's origin and its start time as the server recorded it.
func (s *ctSuite) TestPolicyGetsTheOriginAndTheStartTime() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	var got pipeline.PolicyInput
	s.env.OnActivity(pol.Check, mock.Anything, mock.Anything).Run(func(args mock.Arguments) { got = args.Get(1).(pipeline.PolicyInput) }).
		Return(pipeline.PolicyResult{Allow: true, Revision: "r"}, nil)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	in := input(false)
	in.Origin = "signed-by-the-api"
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	s.Equal("signed-by-the-api", got.Origin)
	s.False(got.StartedAt.IsZero())
}
