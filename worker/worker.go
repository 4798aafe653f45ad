package worker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset/iceberg"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/workflows"
)

// Options configure the pipeline worker.
type Options struct {
	Store       objstore.Bucket
	MetricsAddr string // e.g. ":9464"; empty: no metrics server
	Registry    *prometheus.Registry
	RBAC        policies.RBAC // who may do what (approvers of each model)
	Webhook     string        // Slack-compatible approval and fairness-review notifications (optional)
	// Alertmanager is the base URL fairness reviews are raised at as alerts (optional).
	Alertmanager string
	// Online is the feature store's online store materialization writes to (optional).
	Online features.Online
	// AttestationKeys returns the keys that verify approval attestations (the control-plane
	// API's); nil: runs that wait for approval fail, naming the missing configuration.
	AttestationKeys func(ctx context.Context) ([]pipeline.AttestationKey, error)
	// LabelKey checks the label tokens of feedback labels in the canary (serving's key).
	LabelKey []byte
	// CheckpointEvery is how often the window's pass and the gbdt boosting store the state a
	// retry resumes from (0: activities.DefaultCheckpointEvery, 10 s).
	CheckpointEvery time.Duration
	// IcebergCatalogs are the Iceberg catalogs specs may name (dataset.table.catalog).
	IcebergCatalogs map[string]*iceberg.Catalog
	// Kinds are the pipeline's task queues this process polls (pipeline.Kinds: orchestration,
	// data, training); empty: all of them, one process doing everything.
	Kinds []string
	// Slots is how many activities each kind runs at once; a kind not named gets
	// DefaultSlots. The passes over data and the training use every core they are given, so
	// their slots bound the memory a worker needs; the partitions a worker leaves wait in the
	// queue for the next worker with a free slot.
	Slots map[string]int
	// Namespace is the Temporal namespace, for the task queues' statistics ("" : default).
	Namespace string
	// EdgeKey signs the edge bundle of every version with an int8 variant (docs/edge.md);
	// nil: versions get no bundle.
	EdgeKey ed25519.PrivateKey
	// Interceptors are added after Driftline's own (the step timer) on every kind.
	Interceptors []interceptor.WorkerInterceptor
	// Register, when set, registers a build's own additions on each kind's worker after
	// Driftline's workflows and activities (its own activities, or, in the upgrade rehearsal,
	// the changes a next build makes).
	Register func(kind string, r sdkworker.Registry)
	// UpdateAudit, installed on c's connection (UpdateAudit.Configure), audits the Updates the
	// workflows refuse; Run runs its writer. Without it a refused Update is answered to its
	// sender and logged by nobody.
	UpdateAudit *UpdateAudit
	// Deployment and BuildID opt the worker into Temporal's worker versioning: it announces
	// itself as version Deployment:BuildID, runs only the workflows of that version, and
	// names its build in its identity ("pid@host@driftline-worker build Deployment:BuildID"),
	// which the rollout's gate reads in workflow-task failures. Empty Deployment: an
	// unversioned worker (the dev server, docker-compose).
	Deployment, BuildID string
}

// Identity is the Temporal identity of a worker of deployment version deployment:build on
// this host and process: the SDK's usual "pid@host@" first (what tools and tests read to
// find a process), then "driftline-worker", then " build deployment:build" when versioned,
// which a rollout's gate reads to attribute a failure to a build.
func Identity(deployment, build string) string {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%d@%s@driftline-worker", os.Getpid(), host)
	if deployment != "" {
		id += " build " + deployment + ":" + build
	}
	return id
}

// DefaultSlots is the activities a worker kind runs at once when Options.Slots does not say:
// the orchestration's light activities the Temporal SDK's default (1,000), a pass over data
// one a core, a training one at a time (a gbdt training already uses every core).
func DefaultSlots(kind string) int {
	switch kind {
	case pipeline.KindData:
		return runtime.GOMAXPROCS(0)
	case pipeline.KindTraining:
		return 1
	}
	return 0
}

// Pipeline is a running pipeline worker: one Temporal worker for each kind it runs.
type Pipeline struct {
	workers []sdkworker.Worker
	metrics *http.Server
	refused *UpdateAudit
}

// New registers everything on a worker for the pipeline task queue.
func New(ctx context.Context, c client.Client, o Options) (*Pipeline, error) {
	if o.Store == nil {
		return nil, errors.New("worker: a store is required")
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := activities.NewMetrics(reg)
	// Every store request of the activities is counted (driftline_objstore_*).
	o.Store = objstore.WrapWithMetrics(o.Store, objstore.NewStoreMetrics(reg))
	engine, err := policies.NewEngine(ctx, o.RBAC)
	if err != nil {
		return nil, err
	}
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = pipeline.Kinds
	}
	if o.Deployment != "" && o.BuildID == "" {
		return nil, errors.New("worker: a deployment needs a build ID")
	}
	acts := pipelineActivities(c, o, registry.New(o.Store), m, engine, activities.NewMonitorMetrics(reg))
	p := &Pipeline{refused: o.UpdateAudit}
	queues := make([]string, 0, len(kinds))
	for _, kind := range kinds {
		if !slices.Contains(pipeline.Kinds, kind) {
			return nil, fmt.Errorf("worker: unknown kind %q (want %v)", kind, pipeline.Kinds)
		}
		slots, ok := o.Slots[kind]
		if !ok {
			slots = DefaultSlots(kind)
		}
		w := sdkworker.New(c, pipeline.QueueOfKind(kind), kindOptions(o, m, kind, slots))
		if kind == pipeline.KindOrchestration {
			workflows.Register(w)
		}
		// Every kind can run every activity: runs from before the split scheduled their
		// passes and training on the orchestration queue, and still do until they finish.
		for _, a := range acts {
			w.RegisterActivity(a)
		}
		if o.Register != nil {
			o.Register(kind, w)
		}
		p.workers = append(p.workers, w)
		queues = append(queues, pipeline.QueueOfKind(kind))
	}
	reg.MustRegister(newQueueStats(c.WorkflowService(), o.Namespace, queues))
	if o.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		p.metrics = &http.Server{Addr: o.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	return p, nil
}

// kindOptions are the Temporal worker options of one kind: the step timer, the stop timeout,
// its slots, its identity and its deployment version (shared by every kind of the process).
func kindOptions(o Options, m *activities.Metrics, kind string, slots int) sdkworker.Options {
	wo := sdkworker.Options{
		Interceptors: append([]interceptor.WorkerInterceptor{&stepTimer{metrics: m, store: o.Store}}, o.Interceptors...),
		// On SIGTERM, in-flight activities get this long to finish before the worker hands
		// them back (their heartbeat timeout then moves them to another worker).
		WorkerStopTimeout:                  20 * time.Second,
		MaxConcurrentActivityExecutionSize: slots,
		Identity:                           Identity(o.Deployment, o.BuildID),
		DisableWorkflowWorker:              kind != pipeline.KindOrchestration,
	}
	if o.Deployment != "" {
		wo.DeploymentOptions = sdkworker.DeploymentOptions{UseVersioning: true,
			Version: sdkworker.WorkerDeploymentVersion{DeploymentName: o.Deployment, BuildID: o.BuildID}}
	}
	return wo
}

// pipelineActivities are the activity structs every kind registers.
func pipelineActivities(c client.Client, o Options, r *registry.Registry, m *activities.Metrics, engine *policies.Engine, mm *activities.MonitorMetrics) []any {
	return []any{
		&activities.Data{Store: o.Store, Registry: r, Metrics: m, CheckpointEvery: o.CheckpointEvery, Catalogs: o.IcebergCatalogs},
		&activities.Training{Store: o.Store, Registry: r, Metrics: m, CheckpointEvery: o.CheckpointEvery},
		&activities.Monitoring{Store: o.Store, Registry: r, Metrics: mm, Webhook: o.Webhook, Alertmanager: o.Alertmanager, Keys: o.AttestationKeys},
		&activities.Registry{Store: o.Store, Registry: r, Metrics: m, Temporal: c, EdgeKey: o.EdgeKey},
		&activities.Policy{Store: o.Store, Engine: engine, Audit: audit.Log{Store: o.Store}, Webhook: o.Webhook, Registry: r,
			Keys: o.AttestationKeys, Temporal: c},
		&activities.Features{Store: o.Store, Online: o.Online},
		&activities.Canary{Store: o.Store, Registry: r, LabelKey: o.LabelKey},
		&activities.Fleet{Store: o.Store, Registry: r, EdgeKey: o.EdgeKey},
	}
}

// Run serves until ctx is done.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.metrics != nil {
		go func() {
			if err := p.metrics.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("metrics server", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = p.metrics.Shutdown(sctx)
		}()
	}
	for i, w := range p.workers {
		if err := w.Start(); err != nil {
			for _, started := range p.workers[:i] {
				started.Stop()
			}
			return err
		}
	}
	if p.refused != nil {
		wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); p.refused.Run(wctx) }()
		defer func() { stop(); <-done }() // after the worker stops: the last refusals are written
	}
	<-ctx.Done()
	var wg sync.WaitGroup // the kinds drain side by side, each within its stop timeout
	for _, w := range p.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.Stop() }()
	}
	wg.Wait()
	return nil
}
