package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	protocolpb "go.temporal.io/api/protocol/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// wire drives UpdateAudit's interceptor with the messages a worker exchanges with Temporal.
type wire struct {
	t *testing.T
	u *UpdateAudit
}

func (w wire) call(req, reply any, fill func(reply any)) {
	require.NoError(w.t, w.u.Interceptor(context.Background(), "/m", req, reply, nil,
		func(_ context.Context, _ string, _, reply any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			if fill != nil {
				fill(reply)
			}
			return nil
		}))
}

func updateRequest(t *testing.T, id, identity, name string, arg any) *updatepb.Request {
	args, err := converter.GetDefaultDataConverter().ToPayloads(arg)
	require.NoError(t, err)
	return &updatepb.Request{Meta: &updatepb.Meta{UpdateId: id, Identity: identity}, Input: &updatepb.Input{Name: name, Args: args}}
}

// deliver is a workflow task of workflowID that carries requests; reject completes it
// refusing them with reason.
func (w wire) deliver(token, workflowID string, reqs ...*updatepb.Request) {
	var msgs []*protocolpb.Message
	for i, r := range reqs {
		body, err := anypb.New(r)
		require.NoError(w.t, err)
		msgs = append(msgs, &protocolpb.Message{Id: fmt.Sprintf("%s/request/%d", token, i), Body: body})
	}
	w.call(&workflowservice.PollWorkflowTaskQueueRequest{}, &workflowservice.PollWorkflowTaskQueueResponse{}, func(reply any) {
		r := reply.(*workflowservice.PollWorkflowTaskQueueResponse)
		r.TaskToken = []byte(token)
		r.WorkflowExecution = &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: "run-1"}
		r.Messages = msgs
	})
}

func (w wire) reject(token, reason string, reqs ...*updatepb.Request) {
	var msgs []*protocolpb.Message
	for _, r := range reqs {
		body, err := anypb.New(&updatepb.Rejection{RejectedRequest: r, Failure: &failurepb.Failure{Message: reason}})
		require.NoError(w.t, err)
		msgs = append(msgs, &protocolpb.Message{Id: r.GetMeta().GetUpdateId() + "/reject", Body: body})
	}
	w.call(&workflowservice.RespondWorkflowTaskCompletedRequest{TaskToken: []byte(token), Messages: msgs},
		&workflowservice.RespondWorkflowTaskCompletedResponse{}, nil)
}

func drain(t *testing.T, u *UpdateAudit) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	u.Run(ctx) // writes what is queued, then returns
}

func TestRefusedUpdatesAreAuditedUnderTheSendersTemporalIdentity(t *testing.T) {
	store := objstore.NewMem()
	log := audit.Log{Store: store}
	u := NewUpdateAudit(log)
	w := wire{t, u}

	forged := updateRequest(t, "u1", "mallory@laptop", pipeline.UpdateApprove,
		pipeline.Approval{Approver: "alice", Reason: "I am alice", Version: 3})
	w.deliver("task-1", pipeline.WorkflowID("demand"), forged)
	w.reject("task-1", "an attested decision is required", forged)

	ack := updateRequest(t, "u2", "mallory@laptop", pipeline.UpdateAcknowledge,
		pipeline.ReviewAck{Review: "fairness-1", Decision: "rollback", Reason: "trust me", Attestation: "self-signed"})
	w.deliver("task-2", pipeline.MonitorWorkflowID("demand"), ack)
	w.reject("task-2", "acknowledgement refused: attestation", ack)

	// A task that accepted its Update (no rejection) and one whose workflow is not a
	// model's: nothing, and the invalid chain.
	ok := updateRequest(t, "u3", "api@host", pipeline.UpdateApprove, pipeline.Approval{Approver: "alice", Version: 3})
	w.deliver("task-3", pipeline.WorkflowID("demand"), ok)
	w.call(&workflowservice.RespondWorkflowTaskCompletedRequest{TaskToken: []byte("task-3")}, &workflowservice.RespondWorkflowTaskCompletedResponse{}, nil)
	odd := updateRequest(t, "u4", "mallory@laptop", pipeline.UpdateApprove, pipeline.Approval{Approver: "alice", Version: 1})
	w.deliver("task-4", "ct/../../x", odd)
	w.reject("task-4", "no", odd)
	// A rejection in a task that delivered no Update is not UpdateAudit's to guess.
	w.reject("task-never-delivered", "no", forged)
	drain(t, u)
	require.EqualValues(t, 3, u.Written())

	recs, err := log.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, recs, 2)
	byUpdate := map[string]audit.Record{}
	for _, r := range recs {
		byUpdate[r.Decision] = r
	}
	approve := byUpdate[pipeline.UpdateApprove]
	require.Equal(t, "temporal:mallory@laptop", approve.Actor, "the sender as Temporal recorded it, not the approver it claimed")
	require.Equal(t, "update_refused", approve.Action)
	require.Equal(t, 3, approve.Version)
	require.Equal(t, "run-1", approve.RunID)
	require.Equal(t, "an attested decision is required", approve.Reason)
	require.Equal(t, "alice", approve.Details["claimed_approver"])
	review := byUpdate[pipeline.UpdateAcknowledge]
	require.Equal(t, "temporal:mallory@laptop", review.Actor)
	require.Equal(t, "fairness-1", review.Details["review"])
	require.Equal(t, "rollback", review.Details["review_decision"])
	invalid, err := log.List(context.Background(), audit.InvalidChain, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, invalid, 1, "a workflow id that is not a model's goes to the invalid chain, never into a key")

	// The same rejection seen again (a retried completion) is recorded once.
	w.deliver("task-1b", pipeline.WorkflowID("demand"), forged)
	w.reject("task-1b", "an attested decision is required", forged)
	drain(t, u)
	recs, err = log.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, recs, 2)
}

func TestAFloodOfRefusedUpdatesIsCountedNotDropped(t *testing.T) {
	store := objstore.NewMem()
	log := audit.Log{Store: store}
	u := NewUpdateAudit(log)
	w := wire{t, u}
	const n = 1000 // more than the queue holds: nobody writes while they arrive
	for i := range n {
		r := updateRequest(t, fmt.Sprintf("u%d", i), "mallory@laptop", pipeline.UpdateApprove, pipeline.Approval{Approver: "alice", Version: 1})
		token := fmt.Sprintf("t%d", i)
		w.deliver(token, pipeline.WorkflowID("demand"), r)
		w.reject(token, "an attested decision is required", r)
	}
	require.Less(t, len(u.tasks), 1, "completed tasks are forgotten")
	drain(t, u)
	recs, err := log.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	one, counted := 0, 0
	for _, r := range recs {
		switch r.Action {
		case "update_refused":
			one++
		case "update_refused_count":
			for _, line := range r.Details["counts"].([]any) {
				l := line.(map[string]any)
				require.Equal(t, "mallory@laptop", l["temporal_identity"])
				counted += int(l["count"].(float64))
			}
		}
	}
	require.Equal(t, cap(u.queue), one)
	require.Equal(t, n, one+counted, "every refused Update is in the trail, one by one or counted")
}
