package pipeline

// Task queue and workflow names.
const (
	TaskQueue          = "driftline-pipeline"
	ContinuousTraining = "ContinuousTraining"
	CanaryWorkflow     = "Canary"
	// PartitionsWorkflow runs a batch of a large window's partitions for a run (a child of it)
	// and combines their summaries into one.
	PartitionsWorkflow = "Partitions"
)

// Message names of the ContinuousTraining workflow.
const (
	QueryStatus    = "status"
	UpdateApprove  = "approve"
	UpdateReject   = "reject"
	SignalApproval = "approval"
)

// Custom search attribute names (created by `driftline setup` and the dev server flags); the
// typed keys are in package workflows.
const (
	AttrModel      = "DriftlineModel"
	AttrOutcome    = "DriftlineOutcome"
	AttrStage      = "DriftlineStage"
	AttrDriftScore = "DriftlineDriftScore"
	AttrVersion    = "DriftlineCandidateVersion"
)

// SearchAttribute is a custom search attribute with its Temporal type name.
type SearchAttribute struct{ Name, Type string }

// SearchAttributes lists every custom attribute, for setup.
var SearchAttributes = []SearchAttribute{
	{AttrModel, "Keyword"}, {AttrOutcome, "Keyword"}, {AttrStage, "Keyword"},
	{AttrDriftScore, "Double"}, {AttrVersion, "Int"},
}

// WorkflowID is the id of a model's loop: one open run per model.
func WorkflowID(model string) string { return "ct/" + model }

// Activity names: the method names the worker registers (activities.Data.Snapshot is
// "Snapshot"). Workflows call activities by these names only, so they do not link the code
// behind them.
const (
	ActSnapshot     = "Snapshot"
	ActInspect      = "Inspect"            // validate and drift in one pass over the window
	ActInspectPart  = "InspectPartition"   // the one pass over one partition of the window
	ActMergeParts   = "MergePartitions"    // the partitions' summaries merged: Inspect's result
	ActCombineParts = "CombinePartitions"  // partitions' summaries merged into one summary
	ActCheckKeys    = "CheckPartitionKeys" // the unique key across the pieces of split files
	ActEvalPart     = "EvaluatePartition"  // the holdout's evaluation over one partition
	ActCombineEvals = "CombineEvaluations" // evaluation summaries merged into one summary
	ActMergeEvals   = "MergeEvaluations"   // evaluation summaries merged: Evaluate's result
	ActTrainingSet  = "TrainingSet"        // a feature service's point-in-time training set (spec feature_service)
	ActValidate     = "Validate"
	ActDetect       = "Detect"
	ActTrain        = "Train"
	ActExtInput     = "ExternalInput"
	ActAdoptExt     = "AdoptExternal"
	ActEvaluate     = "Evaluate"
	ActRegister     = "Register"
	ActPolicy       = "Check"
	ActApprovers    = "Approvers"
	ActNotify       = "NotifyApproval"
	ActIgnoredSig   = "RecordIgnoredApproval"
	ActApproval     = "RecordApproval"
	ActAttestKeys   = "AttestationKeys"
	ActSetCanary    = "SetCanary"
	ActAbortCanary  = "AbortCanary"
	ActPromote      = "Promote"
	ActCanaryEval   = "EvaluateCanary"
	ActOutcome      = "RecordOutcome"
	// ExternalTrainActivity is the activity type an external trainer registers on its own
	// task queue (spec trainer.task_queue); see ExternalTrainInput.
	ExternalTrainActivity = "driftline.train.v1"
)

// Activities lists every activity name the pipeline worker must register (not the external
// trainer's, which runs elsewhere).
var Activities = []string{ActSnapshot, ActTrainingSet, ActInspect, ActInspectPart, ActMergeParts, ActCombineParts, ActCheckKeys, ActEvalPart, ActCombineEvals, ActMergeEvals, ActValidate, ActDetect, ActTrain, ActExtInput, ActAdoptExt, ActEvaluate,
	ActRegister, ActPolicy, ActApprovers, ActNotify, ActIgnoredSig, ActApproval, ActAttestKeys, ActSetCanary, ActAbortCanary, ActPromote,
	ActCanaryEval, ActOutcome}
