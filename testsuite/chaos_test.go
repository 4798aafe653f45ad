package testsuite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
)

// The fault campaign: real Temporal, real MinIO, the pipeline worker and two serving
// replicas as their own processes (the binary built from this tree). Runs of the loop go on
// while the campaign SIGKILLs the worker at random moments (and starts it again at once),
// restarts MinIO and the Temporal server mid-run, and kills one of two serving replicas behind
// the same deployment pointer during a canary with client traffic on. It checks what a user
// relies on: every run ends in exactly one outcome with exactly one audit record of it, a run
// registers at most one version (exactly one when it says so), the audit chains verify with no
// duplicated record, client requests fail only in flight on the killed replica, and every
// resumption after a worker kill is measured and within 30 s.
//
// It runs on two topologies: the Temporal CLI's dev server (SQLite), and the Temporal server
// v1.30.4 on PostgreSQL, the persistence production users run. make test runs the short form
// (5 kills on each); make chaos the long one (CHAOS_KILLS=20) (docs/testing.md).
func TestFaultCampaignDevServer(t *testing.T) { faultCampaign(t, stack.DevServer) }

// TestFaultCampaignPostgres is the campaign on the Temporal server with PostgreSQL.
func TestFaultCampaignPostgres(t *testing.T) { faultCampaign(t, stack.PostgresServer) }

// faultCampaign runs the campaign's phases: the stack and Driftline's processes, runs of the
// loop under a planned fault each, then what a user relies on, one check a phase.
func faultCampaign(t *testing.T, topology stack.Topology) {
	kills, seed := campaignSize(t)
	t.Logf("fault campaign on %s: %d worker kills, seed %d (CHAOS_SEED=%d reproduces the schedule)", topology, kills, seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+kills*2)*time.Minute)
	defer cancel()
	cp := newCampaign(ctx, t, topology, kills, seed)
	cp.runUnderFaults()
	t.Run("one outcome and one version a run", cp.checkOutcomes)
	t.Run("SIGTERM lets the activity finish", cp.checkGracefulStop)
	t.Run("audit chains verify, nothing twice", cp.checkAuditTrail)
	t.Run("clients fail only on the killed replica", cp.checkClients)
	t.Run("every run resumes within 30 s", cp.checkResumptions)
}

// campaignSize is the number of worker kills (CHAOS_KILLS, 5 by default) and the schedule's
// seed (CHAOS_SEED, random by default).
func campaignSize(t *testing.T) (kills int, seed uint64) {
	kills, seed = 5, uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "CHAOS_KILLS")
		kills = n
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "CHAOS_SEED")
		seed = n
	}
	return kills, seed
}

// campaign is one fault campaign's stack, processes and what it measured.
type campaign struct {
	t        *testing.T
	ctx      context.Context
	st       *stack.Stack
	c        client.Client
	sp       spec.Spec
	worker   *stack.Service
	replicas []*stack.Service
	lb       *balancer
	rows     []dataset.RetailRow // the client traffic's requests
	rng      *rand.Rand
	kills    int

	mu          sync.Mutex
	resumptions []time.Duration
	notes       []string
	terms       []graceful
	effective   atomic.Int64 // kills that landed in a run
	runs        []runOut
}

// graceful is a SIGTERM sent with an activity in flight, and how long the worker took to exit.
type graceful struct {
	act  pendingActivity
	took time.Duration
}

type runOut struct {
	id  string
	res pipeline.RunResult
}

// runPlan is one run of the loop and the faults it meets.
type runPlan struct {
	from, to  string
	force     bool
	term      bool // SIGTERM the worker with an activity in flight
	kills     int  // SIGKILL the worker at stages chosen at random
	minio     bool // restart MinIO mid-run
	temporal  bool // restart the Temporal server mid-run
	replica   bool // kill a serving replica during the canary
	trafficOn bool
}

// newCampaign is the phase that builds the stack (Temporal on topology, MinIO with the demo
// data), the pipeline worker and two serving replicas as processes of the binary built from
// this tree, and the model's registered spec.
func newCampaign(ctx context.Context, t *testing.T, topology stack.Topology, kills int, seed uint64) *campaign {
	st := stack.New(t, topology, "driftline-chaos")
	_, _, err := dataset.WriteRetail(ctx, st.Store, "retail_demand", dataset.DefaultRetail())
	require.NoError(t, err)
	cp := &campaign{t: t, ctx: ctx, st: st, c: st.Dial(ctx, client.Options{}), rng: rand.New(rand.NewPCG(seed, 13)), kills: kills}

	bin := stack.BuildDriftline(t)
	labelKey := filepath.Join(t.TempDir(), "label.key")
	require.NoError(t, os.WriteFile(labelKey, []byte(stack.RandomSecret(32)), 0o600))
	st.SetEnv("DRIFTLINE_LABEL_KEY_FILE=" + labelKey)
	cp.worker = st.Driftline("worker", bin, "worker", "--metrics", fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t)),
		"--rbac", RBACWithoutFloors(t, st.Root), "--attestation-keys", "http://127.0.0.1:1/unused", "--checkpoint-every", "1s")
	var urls []string
	for i := range 2 {
		port := stack.FreePort(t)
		cp.replicas = append(cp.replicas, st.Driftline(fmt.Sprintf("serve-%d", i), bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--models", "demand", "--poll", "200ms", "--log-flush", "300ms"))
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", port))
		stack.WaitHTTP(t, urls[i]+"/healthz", 30*time.Second)
	}
	cp.lb = &balancer{urls: urls, alive: []bool{true, true}}
	cp.rows = dataset.DefaultRetail().Requests(7) // a week of store-item rows

	cp.sp, err = spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	cp.sp.Approval.Required = false // the campaign is about faults, not people
	cp.sp.Canary.Steps, cp.sp.Canary.Bake.Duration, cp.sp.Canary.MaxBakes = []float64{0.5}, 3*time.Second, 5
	cp.sp.Canary.MinRequest, cp.sp.Canary.MinLabels = 15, 300
	require.NoError(t, RegisterSpec(ctx, st.Store, cp.sp), "the runs' spec is the model's registered one")
	return cp
}

func (cp *campaign) note(format string, args ...any) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.notes = append(cp.notes, fmt.Sprintf(format, args...))
}

// runUnderFaults is the phase that runs the loop, each run under its planned faults, with
// client traffic through both replicas from the second run on; more runs follow until the
// kills asked for have landed (a run can finish before its kill).
func (cp *campaign) runUnderFaults() {
	t := cp.t
	plan := []runPlan{
		{from: "2026-09-01", to: "2026-09-28", term: true, kills: 2},
		{from: "2026-10-03", to: "2026-10-30", kills: 1, replica: true, trafficOn: true},
		{from: "2026-10-03", to: "2026-10-30", force: true, kills: 1, minio: true, trafficOn: true},
		{from: "2026-10-03", to: "2026-10-30", force: true, kills: 1, temporal: true, trafficOn: true},
	}
	tctx, stopTraffic := context.WithCancel(cp.ctx)
	defer stopTraffic()
	trafficStarted := false
	for i := 0; i < len(plan) || int(cp.effective.Load()) < cp.kills; i++ {
		if i >= len(plan) { // more kills (make chaos), or kills owed by runs that finished first
			if i > 4*cp.kills+4 {
				t.Fatalf("only %d of %d kills landed in %d runs", cp.effective.Load(), cp.kills, i)
			}
			plan = append(plan, runPlan{from: "2026-10-03", to: "2026-10-30", force: true, kills: min(2, cp.kills-int(cp.effective.Load())), trafficOn: true})
		}
		p := plan[i]
		if p.trafficOn && !trafficStarted {
			trafficStarted = true
			for _, u := range cp.lb.urls { // as a load balancer's readiness check would
				stack.WaitHTTP(t, u+"/readyz", 30*time.Second)
			}
			cp.lb.run(tctx, cp.rows, 150)
		}
		cp.runOnce(i, p)
	}
	stopTraffic()
	cp.lb.wait()
}

// runOnce starts run i and injects its faults while it runs; it waits for the outcome.
func (cp *campaign) runOnce(i int, p runPlan) {
	t, ctx := cp.t, cp.ctx
	in := pipeline.RunInput{Spec: cp.sp, From: p.from, To: p.to, Force: p.force, RequestedBy: "chaos"}
	var run client.WorkflowRun
	var err error
	require.Eventually(t, func() bool { run, err = starter.StartRun(ctx, cp.c, in); return err == nil }, 90*time.Second, 500*time.Millisecond, "start run %d: %v", i+1, err)
	faults := make(chan struct{})
	go func() {
		defer close(faults)
		cp.inject(p, run.GetRunID())
	}()
	var res pipeline.RunResult
	require.Eventually(t, func() bool {
		// Follow again after a Temporal restart breaks the long poll.
		err = cp.c.GetWorkflow(ctx, pipeline.WorkflowID(cp.sp.Model), run.GetRunID()).Get(ctx, &res)
		return err == nil || isRunFailure(err)
	}, time.Duration(3+p.kills)*time.Minute, time.Second, "run %d did not finish", i+1)
	require.NoError(t, err, "run %d", i+1)
	<-faults
	t.Logf("run %d (%s..%s): %s v%d: %s", i+1, p.from, p.to, res.Outcome, res.Version, res.Reason)
	cp.runs = append(cp.runs, runOut{id: run.GetRunID(), res: res})
}

// inject runs a run's planned faults, off the test goroutine (no t.Fatal here: the run's
// own checks report what a fault broke).
func (cp *campaign) inject(p runPlan, runID string) {
	if p.term {
		cp.termDuring(runID)
	}
	for range p.kills {
		cp.killDuring(runID)
	}
	if p.minio {
		time.Sleep(300 * time.Millisecond)
		cp.st.RestartMinIO(2 * time.Second)
		cp.note("MinIO restarted (2 s down)")
	}
	if p.temporal {
		time.Sleep(300 * time.Millisecond)
		if err := cp.st.RestartTemporal(time.Second); err != nil {
			cp.note("%v", err)
		} else {
			cp.note("Temporal server restarted")
		}
	}
	if p.replica { // once the canary runs, kill a replica while traffic flows through both
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if st, err := starter.Status(cp.ctx, cp.c, cp.sp.Model, runID); err == nil && st.Stage == pipeline.StageCanary {
				break
			}
		}
		time.Sleep(2 * time.Second)
		cp.lb.kill(1, cp.replicas[1])
		cp.note("serving replica 1 SIGKILLed during the canary")
	}
}

// killWorker SIGKILLs the worker, starts it again at once and measures how long the run takes
// to resume: until an activity that was in flight starts a new attempt (or is done), or, with
// none in flight, until the run's history moves on.
func (cp *campaign) killWorker(wfID string, stage pipeline.Stage) {
	before := inFlight(cp.ctx, cp.c, wfID)
	at := time.Now()
	cp.worker.Kill()
	cp.worker.Start()
	took, what := waitResumed(cp.ctx, cp.c, wfID, before, at)
	cp.mu.Lock()
	cp.resumptions = append(cp.resumptions, took)
	cp.mu.Unlock()
	cp.note("kill in %s (%s): resumed in %s", stage, what, took.Round(100*time.Millisecond))
}

var (
	// stageOrder is the order a run passes its stages in.
	stageOrder = []pipeline.Stage{pipeline.StageSnapshot, pipeline.StageValidate, pipeline.StageDrift, pipeline.StageTrain, pipeline.StageEvaluate,
		pipeline.StageRegister, pipeline.StagePolicy, pipeline.StageApproval, pipeline.StageCanary, pipeline.StagePromote, pipeline.StageDone}
	// killTargets are the stages a kill is aimed at.
	killTargets = []pipeline.Stage{pipeline.StageSnapshot, pipeline.StageValidate, pipeline.StageTrain, pipeline.StageEvaluate,
		pipeline.StageRegister, pipeline.StagePolicy, pipeline.StageCanary, pipeline.StagePromote}
)

// killDuring waits for the run to reach a stage chosen at random (or pass it) and kills the
// worker there; when the run finishes first, the kill is owed to a later run.
func (cp *campaign) killDuring(runID string) {
	target := killTargets[cp.rng.IntN(len(killTargets))]
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := starter.Status(cp.ctx, cp.c, cp.sp.Model, runID)
		if err != nil {
			continue
		}
		if st.Outcome != "" || st.Stage == pipeline.StageDone {
			return
		}
		if slices.Index(stageOrder, st.Stage) >= slices.Index(stageOrder, target) {
			cp.killWorker(pipeline.WorkflowID(cp.sp.Model), st.Stage)
			cp.effective.Add(1)
			return
		}
	}
}

// termDuring waits for an activity in flight and sends the worker SIGTERM: the worker must
// let the activity finish (no second attempt) and exit; then it is started again.
func (cp *campaign) termDuring(runID string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err := starter.Status(cp.ctx, cp.c, cp.sp.Model, runID); err == nil && (st.Outcome != "" || st.Stage == pipeline.StageDone) {
			return
		}
		if acts := inFlight(cp.ctx, cp.c, pipeline.WorkflowID(cp.sp.Model)); len(acts) > 0 {
			at := time.Now()
			cp.worker.Term()
			took := time.Since(at)
			cp.worker.Start()
			cp.mu.Lock()
			cp.terms = append(cp.terms, graceful{act: acts[0], took: took})
			cp.mu.Unlock()
			cp.note("SIGTERM with activity %s of %s in flight: the worker exited in %s", acts[0].id, acts[0].wf, took.Round(100*time.Millisecond))
			return
		}
	}
}

// checkOutcomes: every run has one outcome, one audit record of it, and registered at most
// one version (exactly one when it says so); the first run deployed v1 despite two kills.
func (cp *campaign) checkOutcomes(t *testing.T) {
	versions, err := registry.New(cp.st.Store).Versions(cp.ctx, cp.sp.Model)
	require.NoError(t, err)
	recs, err := audit.Log{Store: cp.st.Store}.List(cp.ctx, cp.sp.Model, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	for i, r := range cp.runs {
		require.NotEmpty(t, r.res.Outcome, "run %d has an outcome", i+1)
		finished := 0
		for _, a := range recs {
			if a.RunID == r.id && a.Action == "run_finished" {
				finished++
				require.Equal(t, string(r.res.Outcome), a.Decision, "run %d: the audited outcome is the run's", i+1)
			}
		}
		require.Equal(t, 1, finished, "run %d: exactly one run_finished audit record", i+1)
		mine := 0
		for _, v := range versions {
			if v.Lineage.RunID == r.id {
				mine++
				require.Equal(t, r.res.Version, v.Version, "run %d registered the version it reports", i+1)
			}
		}
		if r.res.Version > 0 {
			require.Equal(t, 1, mine, "run %d: exactly one registry version", i+1)
		} else {
			require.Zero(t, mine, "run %d registered nothing", i+1)
		}
	}
	require.Equal(t, pipeline.OutcomePromoted, cp.runs[0].res.Outcome, "the first run deploys v1 despite two kills")
}

// checkGracefulStop: the activity in flight at the SIGTERM finished on its first attempt, and
// the worker exited within its stop timeout.
func (cp *campaign) checkGracefulStop(t *testing.T) {
	require.NotEmpty(t, cp.terms, "the SIGTERM found an activity in flight")
	for _, g := range cp.terms {
		require.Equal(t, int32(1), startedAttempt(cp.ctx, t, cp.c, g.act), "activity %s of %s was not retried after the SIGTERM", g.act.id, g.act.wf)
		require.Less(t, g.took, 25*time.Second, "the worker exits within its 20 s stop timeout")
	}
}

// checkAuditTrail: every chain verifies, and no record is there twice.
func (cp *campaign) checkAuditTrail(t *testing.T) {
	log := audit.Log{Store: cp.st.Store}
	_, problems, err := log.Verify(cp.ctx, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	require.Empty(t, problems, "audit chains")
	recs, err := log.List(cp.ctx, cp.sp.Model, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, a := range recs {
		k := strings.Join([]string{a.Action, a.RunID, strconv.Itoa(a.Version), a.Decision, a.Reason}, "|")
		require.False(t, seen[k], "duplicated audit record %s", k)
		seen[k] = true
	}
}

// checkClients: only requests in flight on the killed replica failed.
func (cp *campaign) checkClients(t *testing.T) {
	lb := cp.lb
	failures, inflightAtKill := lb.report()
	t.Logf("traffic: %d requests, %d answered, %d failed within 6 s of the replica kill (%d were on the wire to it; at most %d can be in flight)",
		lb.sent.Load(), lb.ok.Load(), failures, lb.onWire, inflightAtKill)
	if len(lb.errs) > 0 {
		t.Logf("client failures (first %d): %s", len(lb.errs), strings.Join(lb.errs, "; "))
	}
	require.Positive(t, lb.ok.Load())
	require.LessOrEqual(t, failures, inflightAtKill, "no client request failed beyond the killed replica's in-flight ones")
}

// checkResumptions: every worker kill was measured and every run resumed within 30 s; the
// long steps a kill interrupted resumed from their checkpoints (every second here).
func (cp *campaign) checkResumptions(t *testing.T) {
	var retried, resumed int
	for _, r := range cp.runs {
		notes, n, m := longStepRetries(cp.ctx, t, cp.c, pipeline.WorkflowID(cp.sp.Model), r.id)
		retried, resumed = retried+n, resumed+m
		cp.notes = append(cp.notes, notes...)
	}
	t.Logf("long steps retried after a fault: %d, resumed from a checkpoint: %d", retried, resumed)
	t.Logf("faults: %s", strings.Join(cp.notes, "; "))
	res := slices.Sorted(slices.Values(cp.resumptions))
	require.Len(t, res, int(cp.effective.Load()))
	require.GreaterOrEqual(t, len(res), cp.kills)
	t.Logf("resumption after %d worker SIGKILLs: median %s, max %s", len(res), res[len(res)/2].Round(100*time.Millisecond),
		res[len(res)-1].Round(100*time.Millisecond))
	require.LessOrEqual(t, res[len(res)-1], 30*time.Second, "every run resumes within 30 s of a SIGKILL")
}

// isRunFailure reports whether a Get error is the run's own (not a broken connection).
func isRunFailure(err error) bool {
	var we *temporal.WorkflowExecutionError
	return errors.As(err, &we)
}

// pendingActivity is an activity in flight at a kill.
type pendingActivity struct {
	wf, run string
	id      string
	attempt int32
	started time.Time
}

// openWorkflows are the run and, during a canary, its open child.
func openWorkflows(ctx context.Context, c client.Client, wfID string) []string {
	ids := []string{wfID}
	d, err := c.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		return ids
	}
	for _, ch := range d.GetPendingChildren() {
		ids = append(ids, ch.GetWorkflowId())
	}
	return ids
}

func inFlight(ctx context.Context, c client.Client, wfID string) []pendingActivity {
	var out []pendingActivity
	for _, id := range openWorkflows(ctx, c, wfID) {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			continue
		}
		for _, a := range d.GetPendingActivities() {
			if a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				out = append(out, pendingActivity{wf: id, run: d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), id: a.GetActivityId(), attempt: a.GetAttempt(), started: a.GetLastStartedTime().AsTime()})
			}
		}
	}
	return out
}

// waitResumed measures how long after at the run resumed, and says what it waited for.
func waitResumed(ctx context.Context, c client.Client, wfID string, before []pendingActivity, at time.Time) (time.Duration, string) {
	histLen := func(id string) int64 {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return -1
		}
		if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return 1 << 40
		}
		return d.GetWorkflowExecutionInfo().GetHistoryLength()
	}
	what := "no activity in flight"
	if len(before) > 0 {
		what = fmt.Sprintf("activity %s of %s in flight (attempt %d)", before[0].id, before[0].wf, before[0].attempt)
	}
	// With nothing in flight the run resumes when its history, or an open child's (the
	// canary), moves on.
	total := func() int64 {
		n := int64(0)
		for _, id := range openWorkflows(ctx, c, wfID) {
			h := histLen(id)
			if h < 0 || h == 1<<40 {
				return h
			}
			n += h
		}
		return n
	}
	start := total()
	if len(before) == 0 && start == 1<<40 {
		return 0, "the run had finished"
	}
	for time.Since(at) < 2*time.Minute {
		if len(before) > 0 {
			b := before[0]
			d, err := c.DescribeWorkflowExecution(ctx, b.wf, "")
			if err == nil {
				gone := d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
				found := false
				for _, a := range d.GetPendingActivities() {
					if a.GetActivityId() == b.id {
						found = true
						if a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED && a.GetLastStartedTime().AsTime().After(at) {
							gone = true // a new attempt runs on the restarted worker
						}
					}
				}
				if gone || !found {
					return time.Since(at), what
				}
			}
		} else if n := total(); n != start && start >= 0 && n >= 0 {
			return time.Since(at), what
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(at), what + " (not resumed in 2 min)"
}

// balancer sends client traffic round-robin over serving replicas, as a load balancer with
// health checks would: a replica that refuses connections is taken out, and the request is
// sent to another. Requests that fail any other way are client-visible failures.
type balancer struct {
	urls     []string
	mu       sync.Mutex
	alive    []bool
	next     int
	sent, ok atomic.Int64
	failed   []time.Time
	errs     []string
	killedAt time.Time
	inflight []atomic.Int64 // per replica, requests on the wire
	atKill   int64
	onWire   int64
	wg       sync.WaitGroup
}

func (lb *balancer) pick() (int, bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for range lb.urls {
		i := lb.next % len(lb.urls)
		lb.next++
		if lb.alive[i] {
			return i, true
		}
	}
	return 0, false
}

func (lb *balancer) kill(i int, s *stack.Service) {
	lb.mu.Lock()
	// Each of the 8 clients has at most one request out: the ones on the wire to this replica,
	// or picked for it and about to be sent, are at most 8.
	lb.onWire = lb.inflight[i].Load()
	lb.atKill = clients
	lb.killedAt = time.Now()
	lb.mu.Unlock()
	s.Kill()
}

func (lb *balancer) run(ctx context.Context, rows []dataset.RetailRow, rps int) {
	lb.inflight = make([]atomic.Int64, len(lb.urls))
	hc := &http.Client{Timeout: 5 * time.Second}
	ticks := traffic.Ticks(ctx, rps)
	for range clients {
		lb.wg.Add(1)
		go func() {
			defer lb.wg.Done()
			for i := range ticks {
				req := traffic.FromRetail(rows[i%len(rows)])
				req.RequestID = fmt.Sprintf("chaos-%d", i)
				lb.sent.Add(1)
				for {
					r, ok := lb.pick()
					if !ok {
						lb.fail(errors.New("no replica alive"))
						break
					}
					lb.inflight[r].Add(1)
					resp, err := traffic.Predict(ctx, hc, lb.urls[r], "demand", req)
					lb.inflight[r].Add(-1)
					if ctx.Err() != nil {
						return
					}
					if refused(err) {
						lb.mu.Lock()
						lb.alive[r] = false
						lb.mu.Unlock()
						continue
					}
					if err != nil {
						lb.fail(fmt.Errorf("replica %d: %w", r, err))
						break
					}
					lb.ok.Add(1)
					_ = traffic.Feedback(ctx, hc, lb.urls[r], "demand", req.RequestID, resp.LabelToken, req.Label)
					break
				}
			}
		}()
	}
}

func (lb *balancer) fail(err error) {
	lb.mu.Lock()
	lb.failed = append(lb.failed, time.Now())
	if len(lb.errs) < 5 {
		when := "before the replica kill"
		if !lb.killedAt.IsZero() {
			when = time.Since(lb.killedAt).Round(time.Millisecond).String() + " after the replica kill"
		}
		lb.errs = append(lb.errs, fmt.Sprintf("%s: %v", when, err))
	}
	lb.mu.Unlock()
}

func (lb *balancer) wait() { lb.wg.Wait() }

// report is the failures and how many requests could have been in flight on the killed
// replica. A failure more than the client timeout after the kill was not in flight: then the
// bound is 0 and the check fails.
func (lb *balancer) report() (failures int, inflightAtKill int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	bound := int(lb.atKill)
	for _, f := range lb.failed {
		if lb.killedAt.IsZero() || f.Sub(lb.killedAt) > 6*time.Second {
			bound = 0
		}
	}
	return len(lb.failed), bound
}

// clients is how many requests the balancer's clients have out at most.
const clients = 8

// refused reports a connection refused: the replica is gone and the request never reached it.
func refused(err error) bool {
	var op *net.OpError
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial"))
}

// startedAttempt is the attempt on which an activity of a (finished) workflow last started.
func startedAttempt(ctx context.Context, t *testing.T, c client.Client, a pendingActivity) int32 {
	it := c.GetWorkflowHistory(ctx, a.wf, a.run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := int64(-1)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if at := ev.GetActivityTaskScheduledEventAttributes(); at != nil && at.GetActivityId() == a.id {
			scheduled = ev.GetEventId()
		}
		if st := ev.GetActivityTaskStartedEventAttributes(); st != nil && st.GetScheduledEventId() == scheduled {
			return st.GetAttempt()
		}
	}
	t.Fatalf("activity %s of %s never started", a.id, a.wf)
	return 0
}

// longStepRetries lists, for a run, the Inspect and Train attempts after a first one, with
// what each took from its predecessor's last checkpoint (resumed after a row group, or
// boosting rounds not done again), and how many resumed.
func longStepRetries(ctx context.Context, t *testing.T, c client.Client, wfID, runID string) (notes []string, retried, resumed int) {
	it := c.GetWorkflowHistory(ctx, wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	kinds := map[int64]string{}
	attempts := map[int64]int32{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if at := ev.GetActivityTaskScheduledEventAttributes(); at != nil {
			kinds[ev.GetEventId()] = at.GetActivityType().GetName()
		}
		if st := ev.GetActivityTaskStartedEventAttributes(); st != nil {
			attempts[st.GetScheduledEventId()] = st.GetAttempt()
		}
		done := ev.GetActivityTaskCompletedEventAttributes()
		if done == nil || attempts[done.GetScheduledEventId()] < 2 {
			continue
		}
		kind, attempt := kinds[done.GetScheduledEventId()], attempts[done.GetScheduledEventId()]
		dc := converter.GetDefaultDataConverter()
		switch kind {
		case "Inspect":
			var r pipeline.InspectResult
			require.NoError(t, dc.FromPayloads(done.GetResult(), &r))
			retried++
			if r.ResumedAfter != "" {
				resumed++
				notes = append(notes, fmt.Sprintf("Inspect attempt %d resumed after %s (%d rows not read again)", attempt, r.ResumedAfter, r.ResumedRows))
			} else {
				notes = append(notes, fmt.Sprintf("Inspect attempt %d started over (no checkpoint yet)", attempt))
			}
		case "Train":
			var r pipeline.TrainResult
			require.NoError(t, dc.FromPayloads(done.GetResult(), &r))
			retried++
			if r.ResumedRounds > 0 {
				resumed++
				notes = append(notes, fmt.Sprintf("Train attempt %d boosted on from round %d of %d", attempt, r.ResumedRounds, r.Trees))
			} else {
				notes = append(notes, fmt.Sprintf("Train attempt %d boosted from the start (no checkpoint yet)", attempt))
			}
		}
	}
	return notes, retried, resumed
}
