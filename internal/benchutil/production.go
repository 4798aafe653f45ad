package benchutil

import (
	"context"

	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Production snapshots the model's window [from, to] (dates), trains v1 on it, registers and
// promotes it (the activities called in this process, not through Temporal), and returns the
// snapshot: a window with a production model whose reference a pass drifts against.
func Production(ctx context.Context, b objstore.Bucket, sp spec.Spec, from, to string) (pipeline.SnapshotResult, error) {
	var suite testsuite.WorkflowTestSuite
	te := suite.NewTestActivityEnvironment()
	reg := registry.New(b)
	data, tr, ra := &activities.Data{Store: b, Registry: reg}, &activities.Training{Store: b, Registry: reg}, &activities.Registry{Store: b, Registry: reg}
	for _, a := range []any{data, tr, ra} {
		te.RegisterActivity(a)
	}
	call := func(fn, in, out any) error {
		v, err := te.ExecuteActivity(fn, in)
		if err != nil {
			return err
		}
		return v.Get(out)
	}
	var snap pipeline.SnapshotResult
	if err := call(data.Snapshot, pipeline.SnapshotInput{Model: sp.Model, RunID: "reference", Dataset: sp.Dataset.Name, From: from, To: to}, &snap); err != nil {
		return snap, err
	}
	in := pipeline.StepInput{Model: sp.Model, RunID: "reference", Spec: sp, SnapshotKey: snap.Key}
	var ins pipeline.InspectResult
	var t pipeline.TrainResult
	var rr pipeline.RegisterResult
	if err := call(data.Inspect, in, &ins); err != nil {
		return snap, err
	}
	if err := call(tr.Train, pipeline.TrainInput{StepInput: in, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey}, &t); err != nil {
		return snap, err
	}
	if err := call(ra.Register, pipeline.RegisterInput{StepInput: in, WorkflowID: "reference", RequestedBy: "benchutil", ArtifactKey: t.ArtifactKey,
		ProfileKey: t.ProfileKey, Metrics: map[string]float64{"holdout_mae": 1}}, &rr); err != nil {
		return snap, err
	}
	var dep pipeline.DeployResult
	return snap, call(ra.Promote, pipeline.DeployInput{Model: sp.Model, RunID: "reference", Actor: "benchutil", Version: rr.Version, Reason: "reference for a benchmark or test"}, &dep)
}
