// Package rollout ramps a new build of the pipeline worker in under Temporal's worker
// versioning (10% -> 50% -> 100% of new runs by default), watching Driftline's own health
// gate at every step, and rolls back when the gate fails: the ramp falls to 0% (or the
// previous build is made current again) and the runs whose tasks failed on the bad build are
// named. Runs of the builds before it are never touched: they are pinned to the build that
// started them (workflows.Register).
package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/worker"
)

// Options is one rollout.
type Options struct {
	Deployment, BuildID string
	// Steps are the ramp's percentages of new runs, rising, the last 100 (the build becomes
	// current). Default 10, 50, 100.
	Steps []int
	// Hold is how long each step is watched before the next; Poll how often the gate is read
	// meanwhile (defaults 10 minutes and 30 seconds).
	Hold, Poll time.Duration
	// MaxLatencyRatio bounds the new build's median activity time against the other builds'
	// for each activity both ran at least MinSamples times (defaults 2 and 3).
	MaxLatencyRatio float64
	MinSamples      int
	// LatencyFloor: activities whose median on the new build is under it are not compared
	// (milliseconds of noise are no regression); the other builds' median counts as at least
	// it (default 1 s).
	LatencyFloor time.Duration
	// Log receives one line per decision (nil: none).
	Log func(string)
}

// Validate checks the options and fills in the defaults.
func (o *Options) Validate() error { return o.defaults() }

func (o *Options) defaults() error {
	if o.Deployment == "" || o.BuildID == "" {
		return fmt.Errorf("a rollout needs a deployment and a build ID")
	}
	if len(o.Steps) == 0 {
		o.Steps = []int{10, 50, 100}
	}
	for i, p := range o.Steps {
		if p < 1 || p > 100 || (i > 0 && p <= o.Steps[i-1]) {
			return fmt.Errorf("ramp steps %v: percentages from 1 to 100, rising", o.Steps)
		}
	}
	if o.Steps[len(o.Steps)-1] != 100 {
		return fmt.Errorf("ramp steps %v: the last step must be 100", o.Steps)
	}
	if o.Hold <= 0 {
		o.Hold = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 30 * time.Second
	}
	if o.MaxLatencyRatio <= 0 {
		o.MaxLatencyRatio = 2
	}
	if o.MinSamples <= 0 {
		o.MinSamples = 3
	}
	if o.LatencyFloor <= 0 {
		o.LatencyFloor = time.Second
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	return nil
}

// Result is how a rollout ended.
type Result struct {
	Promoted bool   // the build is current
	Step     int    // the percentage it reached
	Previous string // the build that was current before, "" when none was
	Reason   string // why it was rolled back
	Gate     Gate   // the last reading of the gate
}

// Run ramps o.BuildID in step by step and returns how it ended; an error is a failure to talk
// to Temporal (the deployment is then left as the last step set it, which the error says).
func Run(ctx context.Context, c client.Client, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	h := c.WorkerDeploymentClient().GetHandle(o.Deployment)
	desc, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("describe deployment %s (do workers of build %s run?): %w", o.Deployment, o.BuildID, err)
	}
	res := Result{}
	if cur := desc.Info.RoutingConfig.CurrentVersion; cur != nil {
		res.Previous = cur.BuildID
	}
	if res.Previous == o.BuildID {
		return res, fmt.Errorf("build %s is already current in %s", o.BuildID, o.Deployment)
	}
	since := time.Now()
	for _, p := range o.Steps {
		if err := setStep(ctx, h, o.BuildID, p); err != nil {
			return res, err
		}
		res.Step = p
		o.Log(fmt.Sprintf("%s:%s at %d%% of new runs; watching for %s", o.Deployment, o.BuildID, p, o.Hold))
		g, reason, err := watch(ctx, c, o, since)
		res.Gate = g
		if err != nil {
			return res, err
		}
		if reason != "" {
			res.Reason = reason
			o.Log("gate failed: " + reason)
			return res, rollBack(ctx, h, o, res)
		}
		o.Log(fmt.Sprintf("gate passed at %d%%: %s", p, g))
	}
	res.Promoted = true
	return res, nil
}

func setStep(ctx context.Context, h client.WorkerDeploymentHandle, build string, p int) error {
	var err error
	if p == 100 {
		_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: build})
	} else {
		_, err = h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{BuildID: build, Percentage: float32(p)})
	}
	if err != nil {
		return fmt.Errorf("ramp %s to %d%%: %w", build, p, err)
	}
	return nil
}

// watch reads the gate every Poll for Hold; it returns the last reading and, when the gate
// failed, why.
func watch(ctx context.Context, c client.Client, o Options, since time.Time) (Gate, string, error) {
	end := time.Now().Add(o.Hold)
	for {
		g, err := Check(ctx, c, o.Deployment, o.BuildID, since, o.MinSamples, o.LatencyFloor)
		if err != nil {
			return g, "", err
		}
		if reason := g.Failure(o.MaxLatencyRatio); reason != "" {
			return g, reason, nil
		}
		if !time.Now().Before(end) {
			return g, "", nil
		}
		select {
		case <-ctx.Done():
			return g, "", ctx.Err()
		case <-time.After(min(o.Poll, time.Until(end))):
		}
	}
}

// rollBack routes no new run to the build: its ramp to 0%, or the previous build current
// again when it had become current.
func rollBack(ctx context.Context, h client.WorkerDeploymentHandle, o Options, res Result) error {
	var err error
	if res.Step == 100 { // it had become current: the previous build is again (none: unversioned workers)
		_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: res.Previous})
		o.Log(fmt.Sprintf("rolled back: %q is current again (empty: the unversioned workers)", res.Previous))
	} else {
		_, err = h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{BuildID: o.BuildID, Percentage: 0})
		o.Log(fmt.Sprintf("rolled back: %s ramped to 0%%", o.BuildID))
	}
	if err != nil {
		return fmt.Errorf("roll back %s: %w", o.BuildID, err)
	}
	if len(res.Gate.Failing) > 0 {
		o.Log("runs whose workflow tasks failed on the bad build: " + strings.Join(res.Gate.Failing, ", ") +
			" (one that never completed a task there moves to the current build by itself; one that did stays pinned to it:" +
			" reset it onto the current build or terminate it)")
	}
	return nil
}

// Gate is one reading of the rollout's health: the workflows of the pipeline's task queue
// open now or closed since the rollout began, their workflow tasks failed by the new build's
// workers, and the activity times of the new build against the others'.
type Gate struct {
	Workflows      int      // workflows read
	TaskFailures   int      // workflow task failures by the new build's workers
	NonDeterminism int      // of which non-determinism errors
	Failing        []string // the workflows with such failures
	Example        string   // the first failure's message
	// Slowest is the activity whose median time on the new build is the largest multiple of
	// its median on the other builds, and that multiple (0: no activity ran enough on both).
	Slowest string
	Ratio   float64
}

func (g Gate) String() string {
	s := fmt.Sprintf("%d workflows, %d workflow task failures on the build", g.Workflows, g.TaskFailures)
	if g.Ratio > 0 {
		s += fmt.Sprintf(", slowest activity %s at %.2fx the other builds' median", g.Slowest, g.Ratio)
	}
	return s
}

// Failure is why the gate fails, "" when it passes.
func (g Gate) Failure(maxRatio float64) string {
	switch {
	case g.NonDeterminism > 0:
		return fmt.Sprintf("%d non-determinism errors on the new build (%s): %s", g.NonDeterminism, strings.Join(g.Failing, ", "), g.Example)
	case g.TaskFailures > 0:
		return fmt.Sprintf("%d workflow task failures on the new build (%s): %s", g.TaskFailures, strings.Join(g.Failing, ", "), g.Example)
	case g.Ratio > maxRatio:
		return fmt.Sprintf("activity %s takes %.2fx its median on the other builds (at most %.2fx)", g.Slowest, g.Ratio, maxRatio)
	}
	return ""
}

// maxWorkflows bounds the histories one reading reads.
const maxWorkflows = 1000

// Check reads the gate of build in deployment since a time: the histories of the task
// queue's workflows open now or closed since then (the most recent maxWorkflows); activity
// times are compared as Options says (minSamples, floor).
func Check(ctx context.Context, c client.Client, deployment, build string, since time.Time, minSamples int, floor time.Duration) (Gate, error) {
	query := fmt.Sprintf("TaskQueue = '%s' AND (ExecutionStatus = 'Running' OR CloseTime >= '%s')", pipeline.TaskQueue, since.UTC().Format(time.RFC3339))
	suffix := strings.TrimPrefix(worker.Identity(deployment, build), worker.Identity("", ""))
	var g Gate
	times := map[string]*[2][]time.Duration{} // activity type: new build's, others'
	var token []byte
	for g.Workflows < maxWorkflows {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 100})
		if err != nil {
			return g, fmt.Errorf("list the task queue's workflows: %w", err)
		}
		for _, ex := range resp.Executions {
			if g.Workflows++; g.Workflows > maxWorkflows {
				break
			}
			if err := readHistory(ctx, c, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), suffix, &g, times); err != nil {
				return g, err
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	g.Slowest, g.Ratio = slowest(times, minSamples, floor)
	return g, nil
}

// readHistory adds a workflow's failed workflow tasks and activity times to the gate.
func readHistory(ctx context.Context, c client.Client, id, run, suffix string, g *Gate, times map[string]*[2][]time.Duration) error {
	type started struct {
		at    time.Time
		isNew bool
	}
	scheduled := map[int64]string{} // activity scheduled event: its type
	running := map[int64]started{}  // activity scheduled event: when and by which build
	failed := false
	it := c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("history of %s: %w", id, err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			a := ev.GetWorkflowTaskFailedEventAttributes()
			if !strings.HasSuffix(a.GetIdentity(), suffix) {
				continue
			}
			g.TaskFailures++
			if a.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR ||
				strings.Contains(strings.ToLower(a.GetFailure().GetMessage()), "nondetermin") {
				g.NonDeterminism++
			}
			if g.Example == "" {
				g.Example = a.GetFailure().GetMessage()
			}
			failed = true
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			running[a.GetScheduledEventId()] = started{ev.GetEventTime().AsTime(), strings.HasSuffix(a.GetIdentity(), suffix)}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			sched := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			if st, ok := running[sched]; ok {
				k := scheduled[sched]
				if times[k] == nil {
					times[k] = &[2][]time.Duration{}
				}
				side := 1
				if st.isNew {
					side = 0
				}
				times[k][side] = append(times[k][side], ev.GetEventTime().AsTime().Sub(st.at))
			}
		}
	}
	if failed {
		g.Failing = append(g.Failing, id)
	}
	return nil
}

// slowest is the activity with the largest ratio of medians, new build to others.
func slowest(times map[string]*[2][]time.Duration, minSamples int, floor time.Duration) (string, float64) {
	names := make([]string, 0, len(times))
	for k := range times {
		names = append(names, k)
	}
	slices.Sort(names)
	best, ratio := "", 0.0
	for _, k := range names {
		t := times[k]
		if len(t[0]) < minSamples || len(t[1]) < minSamples {
			continue
		}
		m := median(t[0])
		if m < floor {
			continue
		}
		if r := float64(m) / float64(max(median(t[1]), floor)); r > ratio {
			best, ratio = k, r
		}
	}
	return best, ratio
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
