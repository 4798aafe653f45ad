package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// Registrar is what a worker (or a replayer) registers workflows on.
type Registrar interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers every workflow of this package under its stable name.
func Register(w Registrar) {
	w.RegisterWorkflowWithOptions(ContinuousTrainingWorkflow, workflow.RegisterOptions{Name: pipeline.ContinuousTraining})
	w.RegisterWorkflowWithOptions(CanaryWorkflowFunc, workflow.RegisterOptions{Name: pipeline.CanaryWorkflow})
	w.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	w.RegisterWorkflowWithOptions(MaterializeWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MaterializeWorkflow})
	w.RegisterWorkflowWithOptions(PartitionsWorkflowFunc, workflow.RegisterOptions{Name: pipeline.PartitionsWorkflow})
}
