package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/audit"
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
	// Concurrency is how many activities the worker runs at once (0: the Temporal SDK's
	// default, 1,000). A worker reading partitions of a window is best set to its cores: the
	// partitions it leaves wait in the task queue for the next worker with a free slot.
	Concurrency int
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

// Pipeline is a running pipeline worker.
type Pipeline struct {
	w       sdkworker.Worker
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
	r := registry.New(o.Store)
	wo := sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{&stepTimer{metrics: m, store: o.Store}},
		// On SIGTERM, in-flight activities get this long to finish before the worker hands
		// them back (their heartbeat timeout then moves them to another worker).
		WorkerStopTimeout:                  20 * time.Second,
		MaxConcurrentActivityExecutionSize: o.Concurrency,
		Identity:                           Identity(o.Deployment, o.BuildID),
	}
	if o.Deployment != "" {
		if o.BuildID == "" {
			return nil, errors.New("worker: a deployment needs a build ID")
		}
		wo.DeploymentOptions = sdkworker.DeploymentOptions{UseVersioning: true,
			Version: sdkworker.WorkerDeploymentVersion{DeploymentName: o.Deployment, BuildID: o.BuildID}}
	}
	w := sdkworker.New(c, pipeline.TaskQueue, wo)
	workflows.Register(w)
	w.RegisterActivity(&activities.Data{Store: o.Store, Registry: r, Metrics: m, CheckpointEvery: o.CheckpointEvery})
	w.RegisterActivity(&activities.Training{Store: o.Store, Registry: r, Metrics: m, CheckpointEvery: o.CheckpointEvery})
	w.RegisterActivity(&activities.Monitoring{Store: o.Store, Registry: r, Metrics: activities.NewMonitorMetrics(reg),
		Webhook: o.Webhook, Alertmanager: o.Alertmanager, Keys: o.AttestationKeys})
	w.RegisterActivity(&activities.Registry{Store: o.Store, Registry: r, Metrics: m, Temporal: c})
	w.RegisterActivity(&activities.Policy{Store: o.Store, Engine: engine, Audit: audit.Log{Store: o.Store}, Webhook: o.Webhook, Registry: r,
		Keys: o.AttestationKeys, Temporal: c})
	w.RegisterActivity(&activities.Features{Store: o.Store, Online: o.Online})
	w.RegisterActivity(&activities.Canary{Store: o.Store, Registry: r, LabelKey: o.LabelKey})
	p := &Pipeline{w: w, refused: o.UpdateAudit}
	if o.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		p.metrics = &http.Server{Addr: o.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
	return p, nil
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
	if err := p.w.Start(); err != nil {
		return err
	}
	if p.refused != nil {
		wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); p.refused.Run(wctx) }()
		defer func() { stop(); <-done }() // after the worker stops: the last refusals are written
	}
	<-ctx.Done()
	p.w.Stop()
	return nil
}
