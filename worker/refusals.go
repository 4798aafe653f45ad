package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	protocolpb "go.temporal.io/api/protocol/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// UpdateAudit records every Update a workflow's validator refuses (a forged approval, an
// acknowledgement without a valid attestation, a decision on the wrong version) in the audit
// trail, under the identity the Temporal server recorded for the client that sent it
// ("temporal:<identity>"), with the approver it claimed only as a detail.
//
// A refused Update never reaches the workflow's history and a validator may not have side
// effects, so the record cannot be written by workflow code. UpdateAudit watches the
// worker's own connection to Temporal instead (a gRPC client interceptor, Interceptor): the
// workflow task that delivers an Update carries its request (name, arguments, the sender's
// identity) and the workflow's id, and the task's completion carries the rejection and its
// reason. Records are written by one goroutine (Run) off the worker's path; when Temporal
// clients send refused Updates faster than the store takes records, the excess is counted
// per sender and written as one aggregated record, so a flood costs the trail a bounded amount
// and never blocks the worker.
type UpdateAudit struct {
	log   audit.Log
	dc    converter.DataConverter
	queue chan refusedUpdate

	mu       sync.Mutex
	tasks    map[string]taskWorkflow // task token -> the workflow of a task that delivered Updates
	overflow map[overflowKey]int
	written  atomic.Int64
}

// MaxPendingTasks bounds the workflow tasks with Updates UpdateAudit remembers between their
// delivery and their completion (a task that is never completed is forgotten with the rest).
const MaxPendingTasks = 4096

type taskWorkflow struct{ WorkflowID, RunID string }

type overflowKey struct{ Identity, Model, Update string }

type refusedUpdate struct {
	workflow taskWorkflow
	request  *updatepb.Request
	reason   string
	at       time.Time
}

// NewUpdateAudit writes to log; Configure installs it on the worker's Temporal client.
func NewUpdateAudit(log audit.Log) *UpdateAudit {
	return &UpdateAudit{log: log, dc: converter.GetDefaultDataConverter(), queue: make(chan refusedUpdate, 256),
		tasks: map[string]taskWorkflow{}, overflow: map[overflowKey]int{}}
}

// Configure installs Interceptor on the connection of the Temporal client made with o (the
// pipeline worker is made from that client) and decodes Update arguments with the client's
// data converter (with a payload key the arguments on the wire are encrypted). Call it after
// the rest of o is set, e.g. as config.TemporalClient's option.
func (u *UpdateAudit) Configure(o *client.Options) {
	if o.DataConverter != nil {
		u.dc = o.DataConverter
	}
	o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(u.Interceptor))
}

// Interceptor notes the workflow of every workflow task that delivers Updates and queues the
// Updates that task's completion rejects. It never changes a request or a response.
func (u *UpdateAudit) Interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if done, ok := req.(*workflowservice.RespondWorkflowTaskCompletedRequest); ok {
		u.completed(done)
	} else if failed, ok := req.(*workflowservice.RespondWorkflowTaskFailedRequest); ok {
		u.forget(failed.GetTaskToken())
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		return err
	}
	switch r := reply.(type) {
	case *workflowservice.PollWorkflowTaskQueueResponse:
		u.delivered(r)
	case *workflowservice.RespondWorkflowTaskCompletedResponse:
		u.delivered(r.GetWorkflowTask()) // a new task returned with the completion
	}
	return nil
}

func (u *UpdateAudit) delivered(task *workflowservice.PollWorkflowTaskQueueResponse) {
	if task == nil || len(task.GetTaskToken()) == 0 || !hasUpdates(task.GetMessages()) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.tasks) >= MaxPendingTasks {
		clear(u.tasks)
	}
	u.tasks[string(task.GetTaskToken())] = taskWorkflow{task.GetWorkflowExecution().GetWorkflowId(), task.GetWorkflowExecution().GetRunId()}
}

func hasUpdates(msgs []*protocolpb.Message) bool {
	for _, m := range msgs {
		if m.GetBody().MessageIs((*updatepb.Request)(nil)) {
			return true
		}
	}
	return false
}

func (u *UpdateAudit) forget(token []byte) {
	u.mu.Lock()
	delete(u.tasks, string(token))
	u.mu.Unlock()
}

func (u *UpdateAudit) completed(done *workflowservice.RespondWorkflowTaskCompletedRequest) {
	u.mu.Lock()
	wf, ok := u.tasks[string(done.GetTaskToken())]
	delete(u.tasks, string(done.GetTaskToken()))
	u.mu.Unlock()
	if !ok {
		return
	}
	for _, m := range done.GetMessages() {
		var rej updatepb.Rejection
		if !m.GetBody().MessageIs(&rej) || m.GetBody().UnmarshalTo(&rej) != nil || rej.GetRejectedRequest() == nil {
			continue
		}
		r := refusedUpdate{workflow: wf, request: rej.GetRejectedRequest(), reason: rej.GetFailure().GetMessage(), at: time.Now().UTC()}
		select {
		case u.queue <- r:
		default: // the writer is behind: count it
			u.mu.Lock()
			k := overflowKey{r.request.GetMeta().GetIdentity(), modelOf(wf.WorkflowID), r.request.GetInput().GetName()}
			if _, seen := u.overflow[k]; !seen && len(u.overflow) >= 1000 {
				k = overflowKey{Identity: "other"}
			}
			u.overflow[k]++
			u.mu.Unlock()
		}
	}
}

// modelOf names the model of a run's or a monitor's workflow; a name that is not valid (or a
// workflow of no model) goes to the audit trail's chain of invalid names.
func modelOf(workflowID string) string {
	for _, prefix := range []string{pipeline.WorkflowID(""), pipeline.MonitorWorkflowID("")} {
		if m, ok := strings.CutPrefix(workflowID, prefix); ok && spec.ValidName(m) {
			return m
		}
	}
	return audit.InvalidChain
}

// Run writes the queued records until ctx is done, then what is left.
func (u *UpdateAudit) Run(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case r := <-u.queue:
			u.write(context.WithoutCancel(ctx), r)
		case <-tick.C:
			u.flushOverflow(ctx)
		case <-ctx.Done():
			for {
				select {
				case r := <-u.queue:
					u.write(context.WithoutCancel(ctx), r)
				default:
					u.flushOverflow(context.WithoutCancel(ctx))
					return
				}
			}
		}
	}
}

// Written counts the records written so far (for tests and the worker's log).
func (u *UpdateAudit) Written() int64 { return u.written.Load() }

func (u *UpdateAudit) write(ctx context.Context, r refusedUpdate) {
	name, identity := r.request.GetInput().GetName(), r.request.GetMeta().GetIdentity()
	rec := audit.Record{Time: r.at, Actor: "temporal:" + identity, Action: "update_refused", Model: modelOf(r.workflow.WorkflowID),
		RunID: r.workflow.RunID, Decision: name, Reason: r.reason,
		Details: map[string]any{"update": name, "update_id": r.request.GetMeta().GetUpdateId(), "temporal_identity": identity,
			"workflow_id": r.workflow.WorkflowID}}
	switch name {
	case pipeline.UpdateApprove, pipeline.UpdateReject:
		var a pipeline.Approval
		if err := u.dc.FromPayloads(r.request.GetInput().GetArgs(), &a); err == nil {
			rec.Version = a.Version
			rec.Details["claimed_approver"] = a.Approver
			rec.Details["attested"] = a.Attestation != ""
		} else {
			rec.Details["arguments"] = "undecodable: " + err.Error()
		}
	case pipeline.UpdateAcknowledge:
		var a pipeline.ReviewAck
		if err := u.dc.FromPayloads(r.request.GetInput().GetArgs(), &a); err == nil {
			rec.Details["review"] = a.Review
			rec.Details["review_decision"] = a.Decision
			rec.Details["attested"] = a.Attestation != ""
		} else {
			rec.Details["arguments"] = "undecodable: " + err.Error()
		}
	}
	key := fmt.Sprintf("update-refused/%s/%s/%s", r.workflow.WorkflowID, r.workflow.RunID, r.request.GetMeta().GetUpdateId())
	for attempt := 0; ; attempt++ {
		_, err := u.log.Append(ctx, key, rec)
		if err == nil {
			u.written.Add(1)
			return
		}
		if attempt == 4 || ctx.Err() != nil {
			slog.Error("a refused Update could not be audited", "workflow", r.workflow.WorkflowID, "update", name, "identity", identity, "error", err)
			return
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// flushOverflow writes the refused Updates counted but not recorded one by one, one record
// per model with the counts per sender and Update.
func (u *UpdateAudit) flushOverflow(ctx context.Context) {
	u.mu.Lock()
	counts := u.overflow
	u.overflow = map[overflowKey]int{}
	u.mu.Unlock()
	byModel := map[string][]map[string]any{}
	for k, n := range counts {
		byModel[k.Model] = append(byModel[k.Model], map[string]any{"temporal_identity": k.Identity, "update": k.Update, "count": n})
	}
	now := time.Now().UTC()
	for model, lines := range byModel {
		if model == "" {
			model = audit.InvalidChain
		}
		_, err := u.log.Append(ctx, fmt.Sprintf("update-refused-count/%s/%d", model, now.UnixNano()), audit.Record{Time: now,
			Actor: "temporal", Action: "update_refused_count", Model: model, Reason: "refused Updates beyond what the worker records one by one",
			Details: map[string]any{"counts": lines}})
		if err != nil {
			slog.Error("refused Updates' counts could not be audited", "model", model, "error", err)
		} else {
			u.written.Add(1)
		}
	}
}
