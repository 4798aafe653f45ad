package testsuite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/rollout"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/worker"
	"github.com/driftline/driftline/workflows"
)

const upgradeDeployment = "driftline-upgrade"

// The upgrade rehearsal with the real loop: build n of the pipeline worker is current and
// three ContinuousTraining runs (first deployments of three models, approval required) wait
// for their approval on it. Build n1 changes the workflow (a timer before the first step) and
// renames the snapshot activity (PinWindow; Snapshot is gone from it, as after a rename), so
// a run of n replayed on n1 would fail as non-deterministic and could not find its activity.
// n1 is ramped 10% -> 50% -> 100% under the rollout's gate while new runs arrive, and becomes
// current. Then the waiting runs are approved through the API: each finishes promoted on n,
// every workflow task of it on n; the runs that arrived during the ramp finished on n or n1,
// each on one build; runs started afterwards run on n1 (PinWindow in their history); no
// workflow task failed in any run, and no non-determinism error.
func TestUpgradeRehearsalWithRunsWaitingForApproval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	u := newUpgrade(ctx, t)
	h := u.c.WorkerDeploymentClient().GetHandle(upgradeDeployment)

	u.startBuild("n", nil)
	require.Eventually(t, func() bool {
		_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: "n"})
		return err == nil
	}, time.Minute, 500*time.Millisecond, "build n's workers are seen by the deployment")

	var waiting []client.WorkflowRun
	for _, m := range []string{"upgrade-a", "upgrade-b", "upgrade-c"} {
		waiting = append(waiting, u.start(m, true))
	}
	for _, run := range waiting {
		u.awaitApproval(run)
	}

	u.startBuild("n1", nextBuild)
	stopArrivals := u.arrive("ramp-", 4*time.Second)
	var lines []string
	var res rollout.Result
	var err error
	require.Eventually(t, func() bool { // n1's workers must be seen before it can be ramped
		res, err = rollout.Run(ctx, u.c, rollout.Options{Deployment: upgradeDeployment, BuildID: "n1", Steps: []int{10, 50, 100},
			Hold: 12 * time.Second, Poll: 2 * time.Second, Log: func(s string) { lines = append(lines, s) }})
		return err == nil
	}, time.Minute, time.Second, "rollout of n1: %v", err)
	ramped := stopArrivals()
	t.Log(strings.Join(lines, "\n"))
	require.True(t, res.Promoted, "%+v %v", res, lines)
	require.Equal(t, "n", res.Previous)
	require.Zero(t, res.Gate.TaskFailures)

	for _, run := range waiting { // approved after the upgrade: each finishes on n
		model := strings.TrimPrefix(run.GetID(), "ct/")
		st, err := starter.Status(ctx, u.c, model, run.GetRunID())
		require.NoError(t, err)
		_, err = (&api.Client{BaseURL: u.api, Token: u.token("alice")}).Decide(ctx, model,
			api.ApprovalRequest{Version: st.CandidateVersion, Decision: "approve", Reason: "reviewed after the upgrade"})
		require.NoError(t, err, model)
		require.Equal(t, "n", u.finishedOn(run), "run %s finished on the build that started it", run.GetID())
	}
	// Had a run of n been moved to n1, its replay would have failed: n1's changes are real.
	// TMPRL1100: the SDK's code of a non-determinism error.
	require.ErrorContains(t, replay(ctx, t, u, waiting[0], true), "TMPRL1100", "a run of n replayed on n1")
	require.NoError(t, replay(ctx, t, u, waiting[0], false), "the same run replayed on n")
	builds := map[string]int{}
	for _, run := range ramped {
		builds[u.finishedOn(run)]++
	}
	t.Logf("runs that arrived during the ramp finished on: %v", builds)
	require.Equal(t, len(ramped), builds["n"]+builds["n1"])
	require.Positive(t, builds["n1"], "some arrivals went to n1 during the ramp")
	for i := range 2 {
		require.Equal(t, "n1", u.finishedOn(u.start(fmt.Sprint("after-", i), false)), "a new run goes to the current build")
	}
}

// replay replays run's whole history against build n's workflow code, or n1's.
func replay(ctx context.Context, t *testing.T, u *upgrade, run client.WorkflowRun, onN1 bool) error {
	var opts sdkworker.WorkflowReplayerOptions
	n1 := nextBuild(u)
	if onN1 {
		opts.Interceptors = []interceptor.WorkerInterceptor{n1.rename}
	}
	r, err := sdkworker.NewWorkflowReplayerWithOptions(opts)
	require.NoError(t, err)
	workflows.Register(r)
	if onN1 {
		n1.workflows(r)
	}
	var events []*historypb.HistoryEvent
	it := u.c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	return r.ReplayWorkflowHistoryWithOptions(nil, &historypb.History{Events: events},
		sdkworker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: run.GetID(), RunID: run.GetRunID()}})
}

// upgrade is the rehearsal's stack: Temporal's dev server, MinIO with the demo data, the API
// that attests approvals.
type upgrade struct {
	t        *testing.T
	ctx      context.Context
	st       *stack.Stack
	c        client.Client
	rbac     policies.RBAC
	attester *api.Attester
	secret   []byte
	api      string
}

func newUpgrade(ctx context.Context, t *testing.T) *upgrade {
	st := stack.New(t, stack.DevServer, "driftline-upgrade")
	_, _, err := dataset.WriteRetail(ctx, st.Store, "retail_demand", dataset.DefaultRetail())
	require.NoError(t, err)
	rbac, err := policies.LoadRBAC(st.Root + "/examples/rbac.yaml")
	require.NoError(t, err)
	rbac.Organisation = nil
	rbac.Bindings = append(rbac.Bindings, policies.Binding{Subject: "user:alice", Role: "approver", Models: []string{"*"}})
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	u := &upgrade{t: t, ctx: ctx, st: st, c: st.Dial(ctx, client.Options{}), rbac: rbac, attester: api.NewAttester(key),
		secret: []byte("upgrade-secret-upgrade-secret-upgrade")}
	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	srv := httptest.NewServer((&api.Server{Verifier: api.DevHS256{Secret: u.secret}, Engine: engine, Audit: audit.Log{Store: st.Store},
		Runs: api.TemporalRuns{Client: u.c}, Registry: registry.New(st.Store), Attester: u.attester}).Handler())
	t.Cleanup(srv.Close)
	u.api = srv.URL
	return u
}

func (u *upgrade) token(sub string) string {
	tok, err := api.MintDev(u.secret, sub, nil, time.Hour)
	require.NoError(u.t, err)
	return tok
}

// startBuild runs build's pipeline worker (every kind), a version of the rehearsal's
// deployment; next, when set, makes the build's changes.
func (u *upgrade) startBuild(build string, next func(*upgrade) changes) {
	o := worker.Options{Store: u.st.Store, RBAC: u.rbac, Deployment: upgradeDeployment, BuildID: build,
		AttestationKeys: func(context.Context) ([]pipeline.AttestationKey, error) {
			return []pipeline.AttestationKey{u.attester.Key()}, nil
		}}
	if next != nil {
		c := next(u)
		o.Interceptors = []interceptor.WorkerInterceptor{c.rename}
		o.Register = func(kind string, r sdkworker.Registry) {
			if kind == pipeline.KindOrchestration {
				c.workflows(r)
			}
			c.activities(r)
		}
	}
	p, err := worker.New(u.ctx, u.c, o)
	require.NoError(u.t, err)
	wctx, stop := context.WithCancel(context.WithoutCancel(u.ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(wctx) }()
	u.t.Cleanup(func() { stop(); <-done })
}

// start registers a first-deployment spec for model (approval required or not) and starts
// its run over the demo's first four weeks.
func (u *upgrade) start(model string, approval bool) client.WorkflowRun {
	sp, err := spec.Load(u.st.Root + "/examples/demand.yaml")
	require.NoError(u.t, err)
	sp.Model, sp.Approval.Required = model, approval
	require.NoError(u.t, RegisterSpec(u.ctx, u.st.Store, sp))
	run, err := starter.StartRun(u.ctx, u.c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28", RequestedBy: "dave"})
	require.NoError(u.t, err, model)
	return run
}

// awaitApproval waits until the run waits for its approval.
func (u *upgrade) awaitApproval(run client.WorkflowRun) {
	model := strings.TrimPrefix(run.GetID(), "ct/")
	require.Eventually(u.t, func() bool {
		st, err := starter.Status(u.ctx, u.c, model, run.GetRunID())
		return err == nil && st.Stage == pipeline.StageApproval
	}, 3*time.Minute, 200*time.Millisecond, "%s waits for approval", model)
}

// arrive starts a new run (no approval) every period until the returned func is called,
// which returns them.
func (u *upgrade) arrive(prefix string, period time.Duration) func() []client.WorkflowRun {
	var (
		mu   sync.Mutex
		runs []client.WorkflowRun
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(period):
			}
			run := u.start(fmt.Sprint(prefix, i), false)
			mu.Lock()
			runs = append(runs, run)
			mu.Unlock()
		}
	}()
	return func() []client.WorkflowRun {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
}

// finishedOn waits for the run, requires it promoted with no workflow task failed, and
// returns the one build that completed all its workflow tasks (n1's runs pin their window
// with PinWindow, n's with Snapshot).
func (u *upgrade) finishedOn(run client.WorkflowRun) string {
	t := u.t
	var res pipeline.RunResult
	require.NoError(t, run.Get(u.ctx, &res), run.GetID())
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, "%s: %s", run.GetID(), res.Reason)
	builds, activities := map[string]bool{}, map[string]bool{}
	it := u.c.GetWorkflowHistory(u.ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		require.NotEqual(t, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, ev.GetEventType(), "%s: a workflow task failed: %v", run.GetID(),
			ev.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage())
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			_, build, _ := strings.Cut(a.GetIdentity(), " build "+upgradeDeployment+":")
			builds[build] = true
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			activities[a.GetActivityType().GetName()] = true
		}
	}
	require.Len(t, builds, 1, "%s ran on one build: %v", run.GetID(), builds)
	for b := range builds {
		require.Equal(t, b == "n1", activities["PinWindow"], "%s on %s pins its window with PinWindow only on n1", run.GetID(), b)
		require.Equal(t, b == "n", activities[pipeline.ActSnapshot], "%s on %s pins its window with Snapshot only on n", run.GetID(), b)
		return b
	}
	return ""
}

// changes are what a build changes from n: workflows and activities registered over n's,
// and an interceptor on its workflows.
type changes struct {
	workflows  func(workflows.Registrar)
	activities func(sdkworker.ActivityRegistry)
	rename     interceptor.WorkerInterceptor
}

// nextBuild is build n1's changes: ContinuousTraining starts with a timer, and the snapshot
// activity is renamed PinWindow (the workflow schedules it by the new name; the old name now
// fails, as an unregistered activity would).
func nextBuild(u *upgrade) changes {
	data := &activities.Data{Store: u.st.Store, Registry: registry.New(u.st.Store)}
	return changes{
		workflows: func(r workflows.Registrar) {
			r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in pipeline.RunInput) (pipeline.RunResult, error) {
				if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
					return pipeline.RunResult{}, err
				}
				return workflows.ContinuousTrainingWorkflow(ctx, in)
			}, workflow.RegisterOptions{Name: pipeline.ContinuousTraining, VersioningBehavior: workflow.VersioningBehaviorPinned,
				DisableAlreadyRegisteredCheck: true})
		},
		activities: func(r sdkworker.ActivityRegistry) {
			r.RegisterActivityWithOptions(data.Snapshot, activity.RegisterOptions{Name: "PinWindow"})
			r.RegisterActivityWithOptions(func(context.Context, pipeline.SnapshotInput) (pipeline.SnapshotResult, error) {
				return pipeline.SnapshotResult{}, temporal.NewNonRetryableApplicationError("Snapshot was renamed PinWindow in build n1", "NotRegistered", nil)
			}, activity.RegisterOptions{Name: pipeline.ActSnapshot, DisableAlreadyRegisteredCheck: true})
		},
		rename: &renameSnapshot{},
	}
}

// renameSnapshot makes workflows schedule Snapshot as PinWindow.
type renameSnapshot struct {
	interceptor.WorkerInterceptorBase
}

func (r *renameSnapshot) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &renameInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}}
}

type renameInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *renameInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&renameOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}})
}

type renameOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
}

func (o *renameOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	if activityType == pipeline.ActSnapshot {
		activityType = "PinWindow"
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}
