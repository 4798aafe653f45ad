// Command loopbench runs the loop's data steps (snapshot, inspect = validate + drift in one
// pass, train, evaluate, register) on a generated retail window in S3 (MinIO), calling the activities directly, and
// prints each step's seconds and the bytes it read from the store. A first run over the same
// window registers and promotes v1, so the measured run has a production reference to drift
// against and a champion to evaluate. bench/loop.sh starts MinIO and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

var (
	te          *testsuite.TestActivityEnvironment
	profilePath string
	resume      bool
)

// call runs an activity method as a worker would, in an activity context.
func call[T any](fn any, in any) (T, error) {
	var out T
	v, err := te.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	return out, v.Get(&out)
}

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9000", "S3 endpoint")
	bucket := flag.String("bucket", "loopbench", "bucket")
	stores := flag.Int("stores", 300, "stores in the generated window")
	items := flag.Int("items", 500, "items per store")
	days := flag.Int("days", 28, "days in the window")
	specPath := flag.String("spec", "examples/demand.yaml", "model spec (its window_days is set to -days)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured run here")
	flag.BoolVar(&resume, "resume", false, "also time a gbdt training retried after its attempt died at the end of boosting, resuming from its last checkpoint, against one from the start")
	flag.Parse()
	profilePath = *cpuprofile
	if err := run(*endpoint, *bucket, *stores, *items, *days, *specPath); err != nil {
		fmt.Fprintln(os.Stderr, "loopbench:", err)
		os.Exit(1)
	}
}

func run(endpoint, bucketName string, stores, items, days int, specPath string) error {
	ctx := context.Background()
	s3, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: bucketName, Region: "us-east-1",
		AccessKey: os.Getenv("LOOPBENCH_ACCESS_KEY"), SecretKey: os.Getenv("LOOPBENCH_SECRET_KEY")})
	if err != nil {
		return err
	}
	if err := s3.EnsureBucket(ctx); err != nil {
		return err
	}
	sp, err := spec.Load(specPath)
	if err != nil {
		return err
	}
	sp.Dataset.WindowDays = days
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = stores, items, days
	t0 := time.Now()
	if _, _, err := dataset.WriteRetail(ctx, s3, sp.Dataset.Name, cfg); err != nil {
		return err
	}
	from, to := cfg.Start.Format(dataset.DateLayout), cfg.Start.AddDate(0, 0, days-1).Format(dataset.DateLayout)
	fmt.Printf("window: %d stores x %d items x %d days = %d rows (%s..%s), generated in %.1f s\n",
		stores, items, days, stores*items*days, from, to, time.Since(t0).Seconds())

	b := objstore.WrapWithCounting(s3, nil)
	var suite testsuite.WorkflowTestSuite
	te = suite.NewTestActivityEnvironment() // activities heartbeat: they need an activity context
	reg := registry.New(b)
	data := &activities.Data{Store: b, Registry: reg}
	tr := &activities.Training{Store: b, Registry: reg}
	ra := &activities.Registry{Store: b, Registry: reg}
	for _, a := range []any{data, tr, ra} {
		te.RegisterActivity(a)
	}

	// Run 1 (not measured): v1, promoted, the reference of run 2.
	if dep, _, err := reg.Deployment(ctx, sp.Model); err != nil {
		return err
	} else if dep.Production == 0 {
		if _, err := loop(ctx, b, sp, "bench-run-1", from, to, data, tr, ra, false); err != nil {
			return fmt.Errorf("run 1: %w", err)
		}
	}
	b.Reset()
	stop, err := benchutil.CPUProfile(profilePath)
	if err != nil {
		return err
	}
	defer stop()
	_, err = loop(ctx, b, sp, fmt.Sprintf("bench-run-%d", time.Now().UnixNano()), from, to, data, tr, ra, true)
	fmt.Printf("peak RSS %s\n", benchutil.PeakRSS())
	return err
}

type stepper struct {
	b     *objstore.Counting
	total time.Duration
	bytes int64
	print bool
}

func (s *stepper) step(name string, f func() error) error {
	before := s.b.Stats()[objstore.OpGet].Bytes
	t := time.Now()
	err := f()
	d := time.Since(t)
	n := s.b.Stats()[objstore.OpGet].Bytes - before
	s.total += d
	s.bytes += n
	if s.print {
		fmt.Printf("step %-9s %7.2f s  %8.1f MB read\n", name, d.Seconds(), float64(n)/1e6)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func loop(ctx context.Context, b *objstore.Counting, sp spec.Spec, runID, from, to string, data *activities.Data,
	tr *activities.Training, ra *activities.Registry, measured bool) (int, error) {
	st := &stepper{b: b, print: measured}
	var snap pipeline.SnapshotResult
	var err error
	if err = st.step("snapshot", func() error {
		snap, err = call[pipeline.SnapshotResult](data.Snapshot, pipeline.SnapshotInput{Model: sp.Model, RunID: runID, Dataset: sp.Dataset.Name, From: from, To: to})
		return err
	}); err != nil {
		return 0, err
	}
	in := pipeline.StepInput{Model: sp.Model, RunID: runID, Spec: sp, SnapshotKey: snap.Key}
	var ins pipeline.InspectResult
	if err := st.step("inspect", func() error { ins, err = call[pipeline.InspectResult](data.Inspect, in); return err }); err != nil {
		return 0, err
	}
	d := ins.Drift
	var t pipeline.TrainResult
	if err := st.step("train", func() error {
		t, err = call[pipeline.TrainResult](tr.Train, pipeline.TrainInput{StepInput: in, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
		return err
	}); err != nil {
		return 0, err
	}
	var ev pipeline.EvaluateResult
	if err := st.step("evaluate", func() error {
		ev, err = call[pipeline.EvaluateResult](tr.Evaluate, pipeline.EvaluateInput{StepInput: in, ArtifactKey: t.ArtifactKey, ChampionVersion: d.ReferenceVersion})
		return err
	}); err != nil {
		return 0, err
	}
	var rr pipeline.RegisterResult
	if err := st.step("register", func() error {
		rr, err = call[pipeline.RegisterResult](ra.Register, pipeline.RegisterInput{StepInput: in, WorkflowID: "bench", RequestedBy: "loopbench", ArtifactKey: t.ArtifactKey,
			ProfileKey: t.ProfileKey, PredictionProfileKey: ev.PredictionProfileKey, Metrics: map[string]float64{"holdout_mae": ev.CandidateMAE}})
		return err
	}); err != nil {
		return 0, err
	}
	if !measured {
		_, err := call[pipeline.DeployResult](ra.Promote, pipeline.DeployInput{Model: sp.Model, RunID: runID, Actor: "loopbench", Version: rr.Version, Reason: "bench reference"})
		return rr.Version, err
	}
	fmt.Printf("train      %7.2f s reading and binning %d rows, %7.2f s boosting %d trees\n", t.ReadSeconds, t.TrainRows, t.FitSeconds, t.Trees)
	if resume {
		if err := crashAndResume(b, in, ins); err != nil {
			return 0, err
		}
	}
	fmt.Printf("total      %7.2f s  %8.1f MB read of a %.1f MB window (%.2fx); drift %v, candidate MAE %.3f, champion MAE %.3f, v%d\n",
		st.total.Seconds(), float64(st.bytes)/1e6, float64(snap.Bytes)/1e6, float64(st.bytes)/float64(snap.Bytes), d.Drifted, ev.CandidateMAE, ev.ChampionMAE, rr.Version)
	return rr.Version, nil
}

// diesAtStaging fails the write of the candidate artifact: an attempt that dies after its
// boosting, having checkpointed on the way.
type diesAtStaging struct{ objstore.Bucket }

func (d diesAtStaging) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	if strings.HasSuffix(key, "candidate/model.json") {
		return objstore.Object{}, errors.New("worker killed")
	}
	return d.Bucket.Put(ctx, key, body, opts)
}

// crashAndResume times a training whose attempt dies at the end (every 10 s it checkpointed),
// then its retry with the last checkpoint in its heartbeat details, as Temporal would give it.
func crashAndResume(b objstore.Bucket, in pipeline.StepInput, ins pipeline.InspectResult) error {
	ctx := context.Background()
	reg := registry.New(b)
	attempt := func(store objstore.Bucket, details any) (pipeline.TrainResult, time.Duration, error) {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestActivityEnvironment()
		tr := &activities.Training{Store: store, Registry: reg}
		env.RegisterActivity(tr)
		if details != nil {
			env.SetHeartbeatDetails(details)
		}
		t0 := time.Now()
		v, err := env.ExecuteActivity(tr.Train, pipeline.TrainInput{StepInput: in, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
		var out pipeline.TrainResult
		if err == nil {
			err = v.Get(&out)
		}
		return out, time.Since(t0), err
	}
	_, died, err := attempt(diesAtStaging{b}, nil)
	if err == nil || !strings.Contains(err.Error(), "worker killed") {
		return fmt.Errorf("the first attempt should have died: %v", err)
	}
	cps, err := b.List(ctx, keys.Checkpoints(in.Model, in.RunID, "train"))
	if err != nil || len(cps) == 0 {
		return fmt.Errorf("no boosting checkpoint was stored (%v)", err)
	}
	last := cps[len(cps)-1]
	var rounds int
	if _, err := fmt.Sscanf(last.Key[strings.LastIndex(last.Key, "-")+1:], "%05d.gob", &rounds); err != nil {
		return err
	}
	res, took, err := attempt(b, activities.TrainProgress{Rounds: rounds, Checkpoint: last.Key})
	if err != nil {
		return err
	}
	fmt.Printf("resume     attempt 1 died after %.2f s (%d checkpoints, last after round %d, %.1f MB); the retry resumed at round %d and took %.2f s (%d trees)\n",
		died.Seconds(), len(cps), rounds, float64(last.Size)/1e6, res.ResumedRounds, took.Seconds(), res.Trees)
	return nil
}
