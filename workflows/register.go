package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// Registrar is what a worker (or a replayer) registers workflows on.
type Registrar interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers every workflow of this package under its stable name, with the
// behaviour each has under worker versioning (docs/deploying.md; ignored by a worker that does
// not use versioning):
//
//   - ContinuousTraining, Canary, Partitions and FleetRollout are pinned: a run finishes on the build that
//     started it. A run waits days for an approval and then acts on what it decided; its
//     canary and its batches of partitions run on its build (children on the same task queue
//     inherit the parent's pinned build). A new build changes only the runs it starts, so
//     changing these workflows or renaming their activities cannot break a run in flight;
//     the old build's workers stay until its pinned runs are done.
//   - Monitor and Materialize are auto-upgrade: they run for as long as their model or view
//     exists, continuing as new, so pinning would hold an old build up forever. They move to
//     the current build at their next workflow task, which is why every change to them keeps
//     workflow.GetVersion and a replayed history, as before worker versioning.
func Register(w Registrar) {
	pinned, upgrade := workflow.VersioningBehaviorPinned, workflow.VersioningBehaviorAutoUpgrade
	w.RegisterWorkflowWithOptions(ContinuousTrainingWorkflow, workflow.RegisterOptions{Name: pipeline.ContinuousTraining, VersioningBehavior: pinned})
	w.RegisterWorkflowWithOptions(CanaryWorkflowFunc, workflow.RegisterOptions{Name: pipeline.CanaryWorkflow, VersioningBehavior: pinned})
	w.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow, VersioningBehavior: upgrade})
	w.RegisterWorkflowWithOptions(MaterializeWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MaterializeWorkflow, VersioningBehavior: upgrade})
	w.RegisterWorkflowWithOptions(PartitionsWorkflowFunc, workflow.RegisterOptions{Name: pipeline.PartitionsWorkflow, VersioningBehavior: pinned})
	w.RegisterWorkflowWithOptions(FleetRolloutWorkflow, workflow.RegisterOptions{Name: pipeline.FleetWorkflow, VersioningBehavior: pinned})
}
