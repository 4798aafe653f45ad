package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// The pipeline's task queues by the weight of their work (docs/deploying.md, decision 0034).
// Workflows and the light activities (pinning a window, merging summaries, registering,
// policy, approvals, the canary, promotion, the monitor) run on TaskQueue; the passes over a
// window's data and the training each have their own queue, so each kind of worker is sized,
// given its own slots and scaled on its own backlog.
const (
	// DataQueue runs the passes over data: a window's one pass or its partitions, the unique
	// key's check across split files, a holdout's evaluation partitions, a point-in-time
	// training set.
	DataQueue = "driftline-pipeline-data"
	// TrainingQueue runs the fitting of a candidate and its evaluation against the champion.
	TrainingQueue = "driftline-pipeline-training"
)

// Worker kinds: which of the pipeline's queues a worker process polls.
const (
	KindOrchestration = "orchestration"
	KindData          = "data"
	KindTraining      = "training"
)

// Kinds lists the pipeline's worker kinds in a fixed order.
var Kinds = []string{KindOrchestration, KindData, KindTraining}

// QueueOfKind is the task queue a worker kind polls.
func QueueOfKind(kind string) string {
	switch kind {
	case KindData:
		return DataQueue
	case KindTraining:
		return TrainingQueue
	}
	return TaskQueue
}

// queueOfActivity names the activities that leave the orchestration queue.
var queueOfActivity = map[string]string{
	ActInspect: DataQueue, ActInspectPart: DataQueue, ActValidate: DataQueue, ActDetect: DataQueue,
	ActCheckKeys: DataQueue, ActEvalPart: DataQueue, ActTrainingSet: DataQueue, ActExtInput: DataQueue,
	ActTrain: TrainingQueue, ActEvaluate: TrainingQueue,
}

// QueueOf is the task queue an activity of the pipeline is scheduled on.
func QueueOf(activity string) string {
	if q, ok := queueOfActivity[activity]; ok {
		return q
	}
	return TaskQueue
}

// ParseKinds reads a comma-separated list of worker kinds ("all": every kind), refusing an
// unknown one by name.
func ParseKinds(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" || strings.TrimSpace(s) == "" {
		return slices.Clone(Kinds), nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("unknown worker kind %q (want %s, or all)", k, strings.Join(Kinds, ", "))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}
