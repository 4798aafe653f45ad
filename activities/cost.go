package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// StepCost is what the pipeline worker's accounting (worker.stepTimer) measured for one
// attempt of one step of a run: the worker process's CPU during it (steps of several runs at
// once each count the others') and its wall time.
type StepCost struct {
	Step        string  `json:"step"`
	ActivityID  string  `json:"activity_id"`
	Attempt     int32   `json:"attempt"`
	Result      string  `json:"result"` // ok or error
	CPUSeconds  float64 `json:"cpu_seconds"`
	WallSeconds float64 `json:"wall_seconds"`
}

// RunCost is a run's operational cost: the sum of its steps' attempts (retries included).
type RunCost struct {
	CPUSeconds  float64            `json:"cpu_seconds"`
	WallSeconds float64            `json:"wall_seconds"`
	Steps       map[string]float64 `json:"cpu_seconds_by_step"`
	Attempts    int                `json:"attempts"`
}

// CostRecordKind is the version record holding the cost of the run that registered it.
const CostRecordKind = "cost"

// CostKey is where the accounting of one attempt of one step of a run is kept.
func CostKey(model, run, activityID string, attempt int32) string {
	return reportKey(model, run, fmt.Sprintf("cost/%s-%d.json", activityID, attempt))
}

// ModelOfRun is the model of a run's workflow id (ct/<model>), "" for other workflows.
func ModelOfRun(workflowID string) string {
	m, ok := strings.CutPrefix(workflowID, pipeline.WorkflowID(""))
	if !ok {
		return ""
	}
	return m
}

// SumCost adds up the accounting of a run's steps so far.
func SumCost(ctx context.Context, store objstore.Bucket, model, run string) (RunCost, error) {
	objs, err := store.List(ctx, reportKey(model, run, "cost/"))
	if err != nil {
		return RunCost{}, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	c := RunCost{Steps: map[string]float64{}}
	for _, o := range objs {
		data, _, err := objstore.ReadAll(ctx, store, o.Key)
		if err != nil {
			return RunCost{}, err
		}
		var s StepCost
		if err := json.Unmarshal(data, &s); err != nil {
			continue // a torn record is not a reason to lose the rest
		}
		c.CPUSeconds += s.CPUSeconds
		c.WallSeconds += s.WallSeconds
		c.Steps[s.Step] += s.CPUSeconds
		c.Attempts++
	}
	return c, nil
}
