package testsuite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/worker"
)

const fleetDevices = 50

// A fleet of 50 devices, each a driftline-edge process on loopback with its own token, on v1.
// The loop promotes v2 on the server; its rollout to the fleet moves the devices whose hash
// place is below 10%, then 50%, judged at each step from what the devices uploaded, and makes
// v2 the fleet's stable release. One device is offline (its network, not its host) for the
// whole rollout: it keeps answering on v1 and logging, and when it is back it installs v2 and
// uploads every record it made, none lost and none twice. Then a bad v3 (its answers 50 off)
// is promoted on the server and rolled out: the live MAE guardrail breaks at the first step and
// every device goes back to v2, under a bundle signed again with a newer counter.
func TestFleetRampsPromotesAndRollsBackOnFiftyDevices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	fl := newFleetRig(ctx, t)
	phase("control plane up")
	fl.startDevices()
	phase("devices started")
	fl.awaitVersions(t, func(int) int { return 1 }, "every device installs v1")
	stopTraffic := fl.traffic()
	defer stopTraffic()

	// Rollout of a good v2, one device offline all along.
	fl.offline.Store(true)
	phase("every device on v1")
	fl.promote(2)
	fl.rollout(2)
	fl.awaitShare(0.1)
	fl.awaitVersions(t, func(i int) int {
		if i != 0 && registry.DeviceShare("stores", fl.name(i)) < 0.1 {
			return 2
		}
		return 1
	}, "step 1: the devices below 10% by hash run v2, the others v1")
	phase("step 1 ramped")
	res := fl.result("fleet_rollout_promoted")
	phase("rollout of v2 done")
	require.True(t, res.Promoted, "%s", res.Reason)
	require.Len(t, fl.stepsJudged(res), 2, "both steps judged: %s", res.Reason)
	fl.awaitVersions(t, func(i int) int {
		if i == 0 {
			return 1
		}
		return 2
	}, "every online device on v2; the offline one still on v1")
	f := fl.fleet()
	require.Equal(t, 2, f.Stable.Version)
	require.Nil(t, f.Candidate)

	// The offline device comes back: v2, and its whole log.
	fl.offline.Store(false)
	fl.awaitVersions(t, func(int) int { return 2 }, "the device that was offline catches up")
	fl.quiet(0)
	fl.awaitUploaded(t, 0)
	phase("the offline device caught up")

	// A bad v3: rolled back at the first step.
	fl.promote(3)
	v2Counter := f.Stable.Counter
	fl.rollout(3)
	res = fl.result("fleet_rollout_rolled_back")
	phase("rollout of v3 done")
	require.False(t, res.Promoted)
	require.Contains(t, res.Reason, "live MAE", "the rollback names the breach")
	f = fl.fleet()
	require.Equal(t, 2, f.Stable.Version, "the fleet is back on v2")
	require.Greater(t, f.Stable.Counter, v2Counter, "v2 signed again above v3's counter")
	fl.awaitVersions(t, func(int) int { return 2 }, "every device back on v2")
	fl.auditHas(t, registry.TransFleetApply, registry.TransFleetBegin, registry.TransFleetShare, registry.TransFleetPromote, registry.TransFleetRollback)

	// The stores' inputs move (x in [13, 23] where training saw [0, 10]): the devices' drift
	// sketches show it, and the monitor starts the loop.
	fl.shift.Store(13)
	_, err := starter.StartMonitor(ctx, fl.c, pipeline.MonitorInput{Spec: fl.spec, RequestedBy: "fleet-test"})
	require.NoError(t, err)
	var st pipeline.MonitorStatus
	require.Eventually(t, func() bool {
		st, _ = starter.MonitorStatus(ctx, fl.c, "demand")
		return len(st.Runs) > 0
	}, 2*time.Minute, time.Second, "the monitor starts the loop on the fleet's drift: %+v", st.Last)
	phase("the monitor started the loop on the fleet's drift")
	require.True(t, st.Runs[0].Started)
	require.Contains(t, st.Runs[0].Reason, "fleet stores (v2")
	require.NotEmpty(t, st.Last.Fleets)
	require.True(t, st.Last.Fleets[0].Drifted)
	require.Positive(t, st.Last.Fleets[0].Predictions)
	fl.noInputsUploaded(t)
	fl.logMemory(t)
}

// logMemory reports the agents' resident memory after the run (a figure for docs/edge.md, not
// a target).
func (fl *fleetRig) logMemory(t *testing.T) {
	var rss []int
	for _, svc := range fl.devices {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", svc.Pid()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var kb int
			if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
				rss = append(rss, kb)
			}
		}
	}
	if len(rss) > 0 {
		slices.Sort(rss)
		t.Logf("agent resident memory after the run: median %d kB, largest %d kB (%d agents)", rss[len(rss)/2], rss[len(rss)-1], len(rss))
	}
}

// fleetRig is the test's control plane (Temporal's dev server, MinIO, a pipeline worker
// holding the edge signing key, the API) and its devices.
type fleetRig struct {
	t       *testing.T
	ctx     context.Context
	st      *stack.Stack
	c       client.Client
	reg     *registry.Registry
	secret  []byte
	api     string
	keys    string // the public key file the devices trust
	offline atomic.Bool
	proxy   string // device 0's way to the API, cut while offline
	ports   []int
	devices []*stack.Service
	mu      sync.Mutex
	sent    map[int]int  // records (predictions and labels) sent to each device
	paused  sync.Map     // devices the traffic leaves alone
	shift   atomic.Int64 // added to every input
	spec    spec.Spec
}

func newFleetRig(ctx context.Context, t *testing.T) *fleetRig {
	st := stack.New(t, stack.DevServer, "driftline-fleet")
	fl := &fleetRig{t: t, ctx: ctx, st: st, c: st.Dial(ctx, client.Options{}), reg: registry.New(st.Store),
		secret: []byte("fleet-secret-fleet-secret-fleet-secret"), sent: map[int]int{}}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	fl.keys = filepath.Join(t.TempDir(), "edge.pub")
	require.NoError(t, os.WriteFile(fl.keys, []byte(hex.EncodeToString(pub)+"\n"), 0o600))

	// v1, v2 (as good) and v3 (50 off): linear models of x, each with its signed bundle and
	// the reference profile of x in [0, 10].
	sample := make([]float64, 2000)
	for i := range sample {
		sample[i] = 10 * float64(i) / float64(len(sample))
	}
	prof, err := drift.NewProfile([]string{"x"}, [][]float64{sample})
	require.NoError(t, err)
	for n, intercept := range []float64{0, 0.01, 50} {
		m := &model.Model{Family: "linear", Objective: hparams.SquaredError, Features: []string{"x"}, Inputs: model.NumericInputs([]string{"x"}),
			Linear: &model.Linear{Intercept: intercept, Coef: []float64{1}, Means: []float64{0}, Scales: []float64{1}}}
		art, err := m.Marshal()
		require.NoError(t, err)
		q, err := m.Quantise()
		require.NoError(t, err)
		qa, err := q.Marshal()
		require.NoError(t, err)
		_, err = fl.reg.Register(ctx, registry.Version{Model: "demand", Lineage: registry.Lineage{RunID: fmt.Sprint("run-", n+1), CreatedBy: "dave"}}, art, prof, nil)
		require.NoError(t, err)
		_, err = fl.reg.IssueEdgeBundle(ctx, "demand", n+1, qa, nil, key)
		require.NoError(t, err)
	}
	fl.promote(1)
	// The guardrails are the registered spec's: fast bakes, few labels, for a test; the
	// devices' inputs stay on them; the monitor looks every 10 s, one drifted window is enough.
	sp, err := spec.Load(st.Root + "/examples/demand.yaml")
	require.NoError(t, err)
	sp.Canary.Steps, sp.Canary.Bake.Duration, sp.Canary.MaxBakes, sp.Canary.MinLabels = []float64{0.1, 0.5}, 4*time.Second, 8, 40
	sp.Edge.DataStaysOnDevice = true
	sp.Monitoring.Interval.Duration, sp.Monitoring.Settle.Duration, sp.Monitoring.DriftWindows = 10*time.Second, time.Second, 1
	require.NoError(t, RegisterSpec(ctx, st.Store, sp))
	fl.spec = sp

	rbac, err := policies.LoadRBAC(st.Root + "/examples/rbac.yaml")
	require.NoError(t, err)
	p, err := worker.New(ctx, fl.c, worker.Options{Store: st.Store, RBAC: rbac, EdgeKey: key})
	require.NoError(t, err)
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })

	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	srv := httptest.NewServer((&api.Server{Verifier: api.DevHS256{Secret: fl.secret}, Engine: engine, Audit: audit.Log{Store: st.Store},
		Runs: api.TemporalRuns{Client: fl.c}, Registry: fl.reg}).Handler())
	t.Cleanup(srv.Close)
	fl.api = srv.URL
	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fl.offline.Load() {
			http.Error(w, "offline", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	fl.proxy = proxy.URL

	// The fleet: every device of group edge-devices (the examples' edge role), by an admin.
	code, body := fl.call(http.MethodPut, "/v1/models/demand/fleets/stores", fl.token("erin", "ml-platform"), `{"groups": ["edge-devices"]}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	return fl
}

func (fl *fleetRig) name(i int) string { return fmt.Sprintf("device-%02d", i) }

func (fl *fleetRig) token(sub string, groups ...string) string {
	tok, err := api.MintDev(fl.secret, sub, groups, time.Hour)
	require.NoError(fl.t, err)
	return tok
}

func (fl *fleetRig) call(method, path, token, body string) (int, []byte) {
	req, err := http.NewRequestWithContext(fl.ctx, method, fl.api+path, strings.NewReader(body))
	require.NoError(fl.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(fl.t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// startDevices starts the 50 agents as processes: their own token, directory and port.
func (fl *fleetRig) startDevices() {
	bin := stack.BuildEdgeAgent(fl.t)
	for i := range fleetDevices {
		dir := filepath.Join(fl.t.TempDir(), fl.name(i))
		tok := filepath.Join(dir, "token")
		require.NoError(fl.t, os.MkdirAll(dir, 0o700))
		require.NoError(fl.t, os.WriteFile(tok, []byte(fl.token(fl.name(i), "edge-devices")), 0o600))
		base := fl.api
		if i == 0 {
			base = fl.proxy
		}
		port := stack.FreePort(fl.t)
		fl.ports = append(fl.ports, port)
		svc := stack.NewService(fl.t, fl.name(i), "", nil, bin, "-fleet", base+"/v1/models/demand/fleets/stores", "-keys", fl.keys,
			"-token-file", tok, "-dir", filepath.Join(dir, "state"), "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-poll", "300ms", "-flush", "3s", "-sketch-every", "2s")
		fl.devices = append(fl.devices, svc)
	}
}

// version is the version device i answers with (0: none yet or unreachable).
func (fl *fleetRig) version(i int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", fl.ports[i]))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var h struct {
		Version int `json:"version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h.Version
}

func (fl *fleetRig) awaitVersions(t *testing.T, want func(i int) int, what string) {
	t.Helper()
	var wrong []string
	require.Eventually(t, func() bool {
		wrong = wrong[:0]
		for i := range fleetDevices {
			if v := fl.version(i); v != want(i) {
				wrong = append(wrong, fmt.Sprintf("%s on v%d, want v%d", fl.name(i), v, want(i)))
			}
		}
		return len(wrong) == 0
	}, 90*time.Second, 300*time.Millisecond, "%s: %v", what, wrong)
}

// traffic is the host programs: every 500 ms each device answers 4 requests and gets their
// labels (x plus noise), until stopped.
func (fl *fleetRig) traffic() func() {
	ctx, stop := context.WithCancel(fl.ctx)
	var wg sync.WaitGroup
	for i := range fleetDevices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 7))
			for round := 0; ctx.Err() == nil; round++ {
				if _, paused := fl.paused.Load(i); !paused {
					fl.send(i, round, rng)
				}
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	return func() { stop(); wg.Wait() }
}

func (fl *fleetRig) send(i, round int, rng *mrand.Rand) {
	const n = 4
	rows, ids, xs := make([][]float64, n), make([]string, n), make([]float64, n)
	for k := range n {
		xs[k] = 10*rng.Float64() + float64(fl.shift.Load())
		rows[k], ids[k] = []float64{xs[k]}, fmt.Sprintf("r%d-%d", round, k)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", fl.ports[i])
	body, _ := json.Marshal(map[string]any{"rows": rows, "ids": ids})
	resp, err := http.Post(base+"/predict", "application/json", bytes.NewReader(body))
	if err != nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	sent := n
	for k := range n {
		lb, _ := json.Marshal(map[string]any{"id": ids[k], "label": xs[k] + rng.NormFloat64()})
		if resp, err := http.Post(base+"/label", "application/json", bytes.NewReader(lb)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				sent++
			}
		}
	}
	fl.mu.Lock()
	fl.sent[i] += sent
	fl.mu.Unlock()
}

// quiet stops the traffic to device i.
func (fl *fleetRig) quiet(i int) {
	fl.paused.Store(i, true)
	time.Sleep(time.Second) // a round in flight finishes
}

func (fl *fleetRig) promote(n int) {
	_, err := fl.reg.UpdateDeployment(fl.ctx, "demand", registry.Change{Action: registry.TransPromote, Actor: "driftline", Key: fmt.Sprint("promote-", n)},
		func(d *registry.Deployment) (bool, error) { return d.Promote(n) })
	require.NoError(fl.t, err)
}

func (fl *fleetRig) rollout(n int) {
	code, body := fl.call(http.MethodPost, "/v1/models/demand/fleets/stores/rollouts", fl.token("erin", "ml-platform"),
		fmt.Sprintf(`{"version": %d, "reason": "v%d passed the loop"}`, n, n))
	require.Equal(fl.t, http.StatusOK, code, "%s", body)
}

func (fl *fleetRig) fleet() registry.Fleet {
	f, _, err := fl.reg.ReadFleet(fl.ctx, "demand", "stores")
	require.NoError(fl.t, err)
	return f
}

func (fl *fleetRig) awaitShare(share float64) {
	require.Eventually(fl.t, func() bool { return fl.fleet().Share == share }, time.Minute, 200*time.Millisecond, "the rollout reaches %.0f%%", 100*share)
}

// result waits for the rollout's result; with DRIFTLINE_RECORD_HISTORIES=DIR its history is
// written to DIR/<record>.json (the replay fixtures of workflows/testdata).
func (fl *fleetRig) result(record string) pipeline.FleetRolloutResult {
	var res pipeline.FleetRolloutResult
	run := fl.c.GetWorkflow(fl.ctx, pipeline.FleetWorkflowID("demand", "stores"), "")
	require.NoError(fl.t, run.Get(fl.ctx, &res))
	if dir := os.Getenv("DRIFTLINE_RECORD_HISTORIES"); dir != "" {
		writeHistory(fl.t, fl.ctx, fl.c, run.GetID(), run.GetRunID(), filepath.Join(dir, record+".json"))
	}
	for _, ev := range res.Evidence {
		fl.t.Logf("step %d (%.0f%%): %s: %s", ev.Step, 100*ev.Share, ev.Decision, ev.Reason)
	}
	return res
}

func (fl *fleetRig) stepsJudged(res pipeline.FleetRolloutResult) map[int]bool {
	steps := map[int]bool{}
	for _, ev := range res.Evidence {
		if ev.Decision == pipeline.CanaryPromote {
			steps[ev.Step] = true
		}
	}
	return steps
}

// awaitUploaded waits until the API holds every record sent to device i, each once.
func (fl *fleetRig) awaitUploaded(t *testing.T, i int) {
	fl.mu.Lock()
	want := fl.sent[i]
	fl.mu.Unlock()
	require.Positive(t, want)
	dev := "/" + api.DeviceHash(fl.name(i)) + "/"
	var got, dups int
	require.Eventually(t, func() bool {
		objs, err := fl.st.Store.List(fl.ctx, "edge/demand/fleets/stores/log/")
		require.NoError(t, err)
		seen := map[string]bool{}
		got, dups = 0, 0
		for _, o := range objs {
			if !strings.Contains(o.Key, dev) {
				continue
			}
			data, _, err := objstore.ReadAll(fl.ctx, fl.st.Store, o.Key)
			require.NoError(t, err)
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var rec agent.Record
				require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
				if rec.Kind == "sketch" {
					continue
				}
				k := rec.Kind + "/" + rec.ID
				if seen[k] {
					dups++
				}
				seen[k] = true
				got++
			}
		}
		return got == want
	}, time.Minute, 300*time.Millisecond, "device %d: its records sent were not all uploaded", i)
	t.Logf("device %d: %d records uploaded of %d sent", i, got, want)
	require.Zero(t, dups, "no record uploaded twice")
}

// noInputsUploaded checks that the devices kept their inputs: the spec says data stays on
// them (the API would refuse a record with inputs, and the agents send none).
func (fl *fleetRig) noInputsUploaded(t *testing.T) {
	objs, err := fl.st.Store.List(fl.ctx, "edge/demand/fleets/stores/log/")
	require.NoError(t, err)
	sketches := 0
	for _, o := range objs {
		data, _, err := objstore.ReadAll(fl.ctx, fl.st.Store, o.Key)
		require.NoError(t, err)
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var rec agent.Record
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			require.Empty(t, rec.Inputs, "%s: %s", o.Key, sc.Text())
			if rec.Kind == "sketch" {
				sketches++
			}
		}
	}
	require.Positive(t, sketches)
}

func (fl *fleetRig) auditHas(t *testing.T, actions ...registry.Transition) {
	recs, err := audit.Log{Store: fl.st.Store}.List(fl.ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Action] = true
	}
	for _, a := range actions {
		require.True(t, seen[string(a)], "audit has %s", a)
	}
}
