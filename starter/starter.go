package starter

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/workflows"
)

// StartRun starts the model's loop. There is at most one open run per model: starting while
// one runs fails with a clear error.
func StartRun(ctx context.Context, c client.Client, in pipeline.RunInput) (client.WorkflowRun, error) {
	if err := in.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("spec of model %q: %w", in.Spec.Model, err)
	}
	opts := client.StartWorkflowOptions{
		ID:                       pipeline.WorkflowID(in.Spec.Model),
		TaskQueue:                pipeline.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK hands back the open run instead of the conflict.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.AttrModel.ValueSet(in.Spec.Model)),
		StaticSummary:                            fmt.Sprintf("retrain %s on %s (%s..%s)", in.Spec.Model, in.Spec.Dataset.Name, orNow(in.From), orNow(in.To)),
		StaticDetails:                            ConsoleDetails(in.Spec.Model),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, pipeline.ContinuousTraining, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, inProgress{in.Spec.Model, opts.ID}
	}
	return run, err
}

// inProgress is StartRun's refusal of a second run: errors.Is(err, pipeline.ErrRunInProgress).
type inProgress struct{ model, id string }

func (e inProgress) Error() string {
	return fmt.Sprintf("model %s already has a run in progress (%s): wait for it or cancel it", e.model, e.id)
}

func (e inProgress) Is(target error) bool { return target == pipeline.ErrRunInProgress }

func orNow(s string) string {
	if s == "" {
		return "latest"
	}
	return s
}

// Status asks a run (the latest of the model when runID is empty) for its status.
func Status(ctx context.Context, c client.Client, model, runID string) (pipeline.Status, error) {
	var st pipeline.Status
	v, err := c.QueryWorkflow(ctx, pipeline.WorkflowID(model), runID, pipeline.QueryStatus)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return st, fmt.Errorf("status of %s: %w (no such run of model %s: start one with driftline run --model %s; driftline models --model %s lists the runs behind each version)",
			pipeline.WorkflowID(model), err, model, model, model)
	}
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", pipeline.WorkflowID(model), err)
	}
	return st, v.Get(&st)
}

// Decide sends the approve or reject Update and waits for its result. The workflow's validator
// refuses unknown approvers, wrong versions, duplicates and missing reasons.
func Decide(ctx context.Context, c client.Client, model string, approve bool, a pipeline.Approval) (string, error) {
	name := pipeline.UpdateReject
	if approve {
		name = pipeline.UpdateApprove
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: pipeline.WorkflowID(model), UpdateName: name, Args: []any{a},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return "", fmt.Errorf("%s %s v%d: %w", name, model, a.Version, err)
	}
	var out string
	if err := h.Get(ctx, &out); err != nil {
		return "", fmt.Errorf("%s %s v%d: %w", name, model, a.Version, err)
	}
	return out, nil
}

// SignalDecision is the signal path, for services that cannot send Updates.
func SignalDecision(ctx context.Context, c client.Client, model string, approve bool, a pipeline.Approval) error {
	return c.SignalWorkflow(ctx, pipeline.WorkflowID(model), "", pipeline.SignalApproval,
		pipeline.ApprovalSignal{Approve: approve, Approval: a})
}

// ConsoleDetails is a run's link back to Driftline's console (the model's page, which lists
// its runs), as the markdown the Temporal UI shows under the run's details; "" unless
// DRIFTLINE_CONSOLE_URL names the console.
func ConsoleDetails(model string) string {
	base := strings.TrimSuffix(os.Getenv("DRIFTLINE_CONSOLE_URL"), "/")
	if base == "" {
		return ""
	}
	return fmt.Sprintf("[%s in the Driftline console](%s/models/%s): versions, runs, lineage, monitoring", model, base, url.PathEscape(model))
}

// UILink is the Temporal UI page of a run (DRIFTLINE_UI_URL, default http://localhost:8233).
func UILink(namespace, workflowID, runID string) string {
	base := os.Getenv("DRIFTLINE_UI_URL")
	if base == "" {
		base = "http://localhost:8233"
	}
	if namespace == "" {
		namespace = "default"
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimSuffix(base, "/"),
		url.PathEscape(namespace), url.PathEscape(workflowID), url.PathEscape(runID))
}

// Setup registers the custom search attributes in the namespace; existing ones are kept.
func Setup(ctx context.Context, c client.Client, namespace string) error {
	types := map[string]enumspb.IndexedValueType{
		"Keyword": enumspb.INDEXED_VALUE_TYPE_KEYWORD, "Double": enumspb.INDEXED_VALUE_TYPE_DOUBLE, "Int": enumspb.INDEXED_VALUE_TYPE_INT,
	}
	want := map[string]enumspb.IndexedValueType{}
	for _, a := range pipeline.SearchAttributes {
		want[a.Name] = types[a.Type]
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	for name := range have.GetCustomAttributes() {
		delete(want, name)
	}
	if len(want) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
