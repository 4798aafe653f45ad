package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset/iceberg"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/buildinfo"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/memlimit"
	"github.com/driftline/driftline/internal/telemetry"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/serving"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/worker"
)

func setupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "setup", Short: "create the bucket and the Temporal search attributes", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for Temporal and S3 to come up")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		deadline := time.Now().Add(*wait)
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		for {
			if err = config.EnsureBucket(ctx, b); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		fmt.Printf("bucket %s ready\n", b.URI(""))
		var c client.Client
		for {
			if c, err = config.TemporalClient(); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		defer c.Close()
		for {
			if err = starter.Setup(ctx, c, config.Namespace()); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		fmt.Printf("search attributes ready in namespace %s\n", config.Namespace())
		return nil
	}
	return cmd
}

func workerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "worker", Short: "run the pipeline worker (task queues driftline-pipeline, -data, -training)", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	metrics := fs.String("metrics", ":9464", "Prometheus metrics address")
	rbacPath := rbacFlag(fs)
	webhook := EnvFlag(fs, "approval-webhook", "DRIFTLINE_APPROVAL_WEBHOOK", "", "Slack-compatible webhook told when a run waits for approval or a fairness review opens")
	onlineStore := EnvFlag(fs, "online-store", "DRIFTLINE_ONLINE_STORE", "", "feature store online store materialization writes to: bolt:<file> or redis://<host:port>[/<prefix>]")
	alertmanager := EnvFlag(fs, "alertmanager", "DRIFTLINE_ALERTMANAGER", "", "Alertmanager base URL fairness reviews are raised at, e.g. http://localhost:9093")
	keys := EnvFlag(fs, "attestation-keys", "DRIFTLINE_ATTESTATION_KEYS", "http://127.0.0.1:8090/v1/attestation-keys", "where runs learn the keys that verify approval attestations: the control-plane API's /v1/attestation-keys")
	labelKeyFile := labelKeyFlag(fs)
	checkpoint := fs.Duration("checkpoint-every", activities.DefaultCheckpointEvery,
		"how often a pass over a window and a gbdt training store the state a retry resumes from")
	kindsFlag, concurrencyFlag := workerKindFlags(fs)
	catalogs := fs.StringArray("iceberg-catalog", nil, "NAME=postgres://user@host/db an Iceberg SQL catalog a spec's dataset.table.catalog may name (repeatable; also DRIFTLINE_ICEBERG_CATALOGS, space-separated; the password from PGPASSWORD or ~/.pgpass)")
	edgeKeyFile := EnvFlag(fs, "edge-signing-key-file", "DRIFTLINE_EDGE_SIGNING_KEY_FILE", "",
		"Ed25519 seed (hex) that signs every new version's edge bundle (docs/edge.md); not the API's attestation key; empty: no bundles")
	memLimit := memoryLimitFlag(fs)
	deployment := EnvFlag(fs, "deployment", "DRIFTLINE_DEPLOYMENT", "",
		"Temporal worker deployment this worker is a version of (worker versioning: runs finish on the build that started them; docs/deploying.md); empty: unversioned")
	buildID := EnvFlag(fs, "build-id", "DRIFTLINE_BUILD_ID", "",
		"the build ID this worker announces with --deployment (default: the binary's git revision)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		build := *buildID
		if *deployment != "" && build == "" {
			if build = buildinfo.Revision(); build == "unknown" {
				return usageError{cmd, errors.New("--deployment needs --build-id: this binary does not know its git revision")}
			}
		}
		kinds, slots, err := workerKinds(cmd, *kindsFlag, *concurrencyFlag)
		if err != nil {
			return err
		}
		if err := applyMemoryLimit(cmd, *memLimit); err != nil {
			return err
		}
		labelKey, edgeKey, err := workerKeys(cmd, *labelKeyFile, *edgeKeyFile)
		if err != nil {
			return err
		}
		rbac, err := policies.LoadRBAC(*rbacPath)
		if err != nil {
			return err
		}
		icebergCatalogs, err := openCatalogs(append(strings.Fields(os.Getenv("DRIFTLINE_ICEBERG_CATALOGS")), *catalogs...))
		if err != nil {
			return usageError{cmd, err}
		}
		defer closeCatalogs(icebergCatalogs)
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		// Updates the workflows' validators refuse never reach history: the worker's connection
		// audits them (worker.UpdateAudit).
		refused := worker.NewUpdateAudit(audit.Log{Store: b})
		c, err := config.TemporalClient(refused.Configure)
		if err != nil {
			return err
		}
		defer c.Close()
		var online features.Online
		if *onlineStore != "" {
			if online, err = features.OpenStore(ctx, *onlineStore); err != nil {
				return err
			}
			defer online.Close()
		}
		p, err := worker.New(ctx, c, worker.Options{Store: b, MetricsAddr: *metrics, RBAC: rbac, Webhook: *webhook, Alertmanager: *alertmanager,
			AttestationKeys: activities.KeysFromURL(*keys), LabelKey: labelKey, CheckpointEvery: *checkpoint, Online: online,
			IcebergCatalogs: icebergCatalogs, UpdateAudit: refused, Kinds: kinds, Slots: slots, EdgeKey: edgeKey, Namespace: config.Namespace(), Deployment: *deployment, BuildID: build})
		if err != nil {
			return err
		}
		announceWorker(*deployment, build, kinds, *metrics)
		return p.Run(ctx)
	}
	return cmd
}

// openCatalogs opens the Iceberg catalogs NAME=URI names.
func openCatalogs(specs []string) (map[string]*iceberg.Catalog, error) {
	out := map[string]*iceberg.Catalog{}
	for _, s := range specs {
		name, uri, ok := strings.Cut(s, "=")
		if !ok || name == "" || uri == "" {
			return nil, fmt.Errorf("--iceberg-catalog %q: want NAME=postgres://user@host/db", s)
		}
		if out[name] != nil {
			return nil, fmt.Errorf("--iceberg-catalog: %s given twice", name)
		}
		c, err := iceberg.OpenCatalog(name, uri)
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

func closeCatalogs(cs map[string]*iceberg.Catalog) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// announceWorker prints what the worker runs: its version, queues and metrics address.
func announceWorker(deployment, build string, kinds []string, metrics string) {
	version := "unversioned"
	if deployment != "" {
		version = "version " + deployment + ":" + build
	}
	queues := make([]string, len(kinds))
	for i, k := range kinds {
		queues[i] = pipeline.QueueOfKind(k)
	}
	fmt.Printf("pipeline worker (%s) on task queues %s; metrics on %s/metrics\n", version, strings.Join(queues, ", "), metrics)
}

// workerKeys reads the label key and the edge bundles' signing key.
func workerKeys(cmd *cobra.Command, labelKeyFile, edgeKeyFile string) ([]byte, ed25519.PrivateKey, error) {
	labelKey, err := readKeyFile(labelKeyFile)
	if err != nil {
		return nil, nil, err
	}
	edgeKey, err := readEdgeKey(edgeKeyFile)
	if err != nil {
		return nil, nil, usageError{cmd, err}
	}
	return labelKey, edgeKey, nil
}

// readEdgeKey reads the edge bundles' signing key: an Ed25519 seed, 32 bytes in hex ("": none).
func readEdgeKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--edge-signing-key-file: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("--edge-signing-key-file %s: want an Ed25519 seed of %d bytes in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// workerKindFlags are --kinds and --concurrency: which of the pipeline's queues a worker
// polls, and how many activities each kind runs at once.
func workerKindFlags(fs *pflag.FlagSet) (kinds, concurrency *string) {
	kinds = EnvFlag(fs, "kinds", "DRIFTLINE_WORKER_KINDS", "all",
		"the pipeline's task queues this worker polls: all, or some of orchestration,data,training (docs/deploying.md)")
	concurrency = EnvFlag(fs, "concurrency", "DRIFTLINE_WORKER_CONCURRENCY", "",
		"activities each kind runs at once: N for every kind, or kind=N,... (defaults: orchestration 1000, data one a core, training 1)")
	return kinds, concurrency
}

// workerKinds reads --kinds and --concurrency, refusing bad values as usage errors.
func workerKinds(cmd *cobra.Command, kindsFlag, concurrencyFlag string) ([]string, map[string]int, error) {
	kinds, err := pipeline.ParseKinds(kindsFlag)
	if err != nil {
		return nil, nil, usageError{cmd, fmt.Errorf("--kinds %q: %w", kindsFlag, err)}
	}
	slots, err := parseSlots(concurrencyFlag)
	if err != nil {
		return nil, nil, usageError{cmd, fmt.Errorf("--concurrency %q: %w", concurrencyFlag, err)}
	}
	return kinds, slots, nil
}

// parseSlots reads --concurrency: "" (every kind's default), N (every kind), or kind=N pairs
// (the kinds not named keep their default). 0 is the Temporal SDK's default, 1,000.
func parseSlots(s string) (map[string]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	count := func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of activities, 0 or more", v)
		}
		return n, nil
	}
	out := map[string]int{}
	if !strings.Contains(s, "=") {
		n, err := count(s)
		if err != nil {
			return nil, err
		}
		for _, k := range pipeline.Kinds {
			out[k] = n
		}
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		kind, v, _ := strings.Cut(pair, "=")
		kind = strings.TrimSpace(kind)
		if !slices.Contains(pipeline.Kinds, kind) {
			return nil, fmt.Errorf("unknown worker kind %q (want orchestration, data or training)", kind)
		}
		n, err := count(v)
		if err != nil {
			return nil, err
		}
		out[kind] = n
	}
	return out, nil
}

// memoryLimitFlag is --memory-limit, the Go heap's soft limit (internal/memlimit).
func memoryLimitFlag(fs *pflag.FlagSet) *string {
	return EnvFlag(fs, "memory-limit", "DRIFTLINE_MEMORY_LIMIT", "auto",
		"soft memory limit of the Go heap: auto (90% of the container's memory limit; none without one or when GOMEMLIMIT is set), off, or a size such as 900MiB")
}

// applyMemoryLimit sets the soft limit the flag asks for and says which.
func applyMemoryLimit(cmd *cobra.Command, setting string) error {
	what, err := memlimit.Apply(setting)
	if err != nil {
		return usageError{cmd, err}
	}
	fmt.Println(what)
	return nil
}

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "serve", Short: "run the serving worker (HTTP and gRPC predictions)", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	listen := fs.String("listen", ":8080", "HTTP address (API, /healthz, /readyz, /metrics)")
	grpcListen := fs.String("grpc", "", "also serve the Open Inference Protocol v2 over gRPC on this address (e.g. :8001; empty: off)")
	models := fs.String("models", "demand", "comma-separated models to serve")
	poll := fs.Duration("poll", time.Second, "how often to check each deployment pointer")
	flush := fs.Duration("log-flush", 2*time.Second, "how often the prediction log is flushed to S3")
	var enrich serving.Enricher
	fs.StringVar(&enrich.Feature, "enrich-feature", "", "feature to fill in when a request lacks it (e.g. temperature)")
	fs.StringVar(&enrich.URL, "enrich-url", "", "source of that feature, with {attribute} placeholders, answering {\"<feature>\": x}")
	fs.DurationVar(&enrich.Timeout, "enrich-timeout", 100*time.Millisecond, "timeout of one enrichment call")
	fs.Float64Var(&enrich.Default, "enrich-default", 0, "value used when the source fails and no value was seen for the key")
	labelKeyFile := labelKeyFlag(fs)
	feats := addServeFeatureFlags(fs)
	maxRows := fs.Int("max-rows", serving.DefaultMaxRows, "rows one request may hold (413 / RESOURCE_EXHAUSTED over it)")
	maxValues := fs.Int("max-values", serving.DefaultMaxValues, "values all of one request's input tensors may hold, checked from their shapes before decoding")
	maxExplain := fs.Int("max-explain-rows", serving.DefaultMaxExplainRows, "rows one request may ask explanations for")
	bodyBudget := fs.Int64("body-budget", serving.DefaultBodyBudget, "bytes all request bodies in flight may hold together (503 with Retry-After over it)")
	memLimit := memoryLimitFlag(fs)
	drainDelay := fs.Duration("drain-delay", 5*time.Second,
		"on SIGTERM, how long the replica keeps answering with its readiness failing before it stops listening (in-flight requests then get up to 10 s more)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if err := applyMemoryLimit(cmd, *memLimit); err != nil {
			return err
		}
		labelKey, err := readKeyFile(*labelKeyFile)
		if err != nil {
			return err
		}
		var enrichers []*serving.Enricher
		if enrich.Feature != "" {
			if enrich.URL == "" {
				return errors.New("--enrich-feature needs --enrich-url")
			}
			enrichers = append(enrichers, &enrich)
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		filler, closeFeatures, err := feats.open(ctx, b)
		if err != nil {
			return err
		}
		defer closeFeatures()
		host, _ := os.Hostname()
		s, err := serving.New(serving.Options{Tracing: telemetry.Enabled(), Store: b, Models: strings.Split(*models, ","), Poll: *poll, LogFlush: *flush, Replica: host, Enrich: enrichers,
			LabelKey: labelKey, Features: filler, MaxRows: *maxRows, MaxValues: *maxValues, MaxExplainRows: *maxExplain,
			BodyBudget: *bodyBudget, DrainDelay: *drainDelay})
		if err != nil {
			return err
		}
		s.Start(ctx)
		if *grpcListen != "" {
			if err := serveGRPC(ctx, s, *grpcListen); err != nil {
				return err
			}
		}
		err = s.ListenAndServe(ctx, *listen)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return cmd
}

// serveGRPC serves the Open Inference Protocol v2 over gRPC on addr until ctx ends (with the
// HTTP server's shutdown).
func serveGRPC(ctx context.Context, s *serving.Server, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--grpc %s: %w", addr, err)
	}
	g := s.GRPCServer()
	go func() {
		if err := g.Serve(ln); err != nil {
			slog.Error("gRPC", "error", err)
		}
	}()
	go func() { <-ctx.Done(); s.Drain(); time.Sleep(s.DrainDelay()); g.GracefulStop() }()
	slog.Info("serving gRPC (Open Inference Protocol v2)", "addr", addr)
	return nil
}

// serveFeatureFlags are serving's feature-store flags: the online store it reads the features
// a request leaves out from, and the materialization it may run for the embedded store.
type serveFeatureFlags struct {
	onlineStore, repo, service, entityAttrs, defaults, asOf, queue string
}

func addServeFeatureFlags(fs *pflag.FlagSet) *serveFeatureFlags {
	f := &serveFeatureFlags{}
	config.StringEnv(fs, &f.onlineStore, "online-store", "DRIFTLINE_ONLINE_STORE", "", "feature store online store to read (and, with --features-queue, materialize): bolt:<file> or redis://<host:port>[/<prefix>]")
	fs.StringVar(&f.repo, "feature-repo", "retail", "repository of the applied feature definitions (driftline features apply)")
	fs.StringVar(&f.service, "feature-service", "", "feature service whose features requests may leave out: read from the online store by the entity's attributes")
	fs.StringVar(&f.entityAttrs, "entity-attributes", "store_id,item_id", "request attributes that make the entity key, in the entity's key order")
	fs.StringVar(&f.defaults, "feature-defaults", "", "feature=value,... used when the store cannot give a value (else the request is refused)")
	fs.StringVar(&f.asOf, "features-as-of", "", "read the online store as of this fixed time (RFC 3339) instead of now: replaying history (the demo's data is from 2026); ages and online_expiry are measured from it")
	fs.StringVar(&f.queue, "features-queue", "", "also run the materialization chunks of this task queue against the online store (needed for the embedded store, which one process holds)")
	return f
}

// open opens the online store (none without --online-store): the filler of a feature
// service's features, and the materialization worker of --features-queue. done closes them.
func (f *serveFeatureFlags) open(ctx context.Context, b objstore.Bucket) (filler *serving.FeatureFiller, done func(), err error) {
	var closers []func()
	done = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if f.onlineStore == "" {
		return nil, done, nil
	}
	online, err := features.OpenStore(ctx, f.onlineStore)
	if err != nil {
		return nil, done, err
	}
	closers = append(closers, func() { online.Close() })
	if f.service != "" {
		defaults, err := parseDefaults(f.defaults)
		if err != nil {
			done()
			return nil, func() {}, err
		}
		// The definitions are read when applied (serving may start first) and re-read every
		// 30 s, so a new version applied takes effect without a restart.
		filler = &serving.FeatureFiller{Store: online, Service: f.service, Keys: strings.Split(f.entityAttrs, ","), Defaults: defaults,
			Load: func(ctx context.Context) (features.Repo, bool, error) {
				_, repo, _, ok, err := features.Current(ctx, b, f.repo)
				return repo, ok, err
			}}
		if f.asOf != "" {
			at, err := time.Parse(time.RFC3339, f.asOf)
			if err != nil {
				done()
				return nil, func() {}, fmt.Errorf("--features-as-of %q: want RFC 3339: %w", f.asOf, err)
			}
			filler.Now = func() time.Time { return at }
		}
	}
	if f.queue != "" {
		c, err := config.TemporalClient()
		if err != nil {
			done()
			return nil, func() {}, err
		}
		closers = append(closers, c.Close)
		fw := sdkworker.New(c, f.queue, sdkworker.Options{})
		fw.RegisterActivity(&activities.Features{Store: b, Online: online})
		if err := fw.Start(); err != nil {
			done()
			return nil, func() {}, fmt.Errorf("features worker on %s: %w", f.queue, err)
		}
		closers = append(closers, fw.Stop)
	}
	return filler, done, nil
}

func labelKeyFlag(fs *pflag.FlagSet) *string {
	return EnvFlag(fs, "label-key-file", "DRIFTLINE_LABEL_KEY_FILE", "", "secret (32+ bytes) that signs and checks the label tokens of feedback labels; serving and the pipeline worker share it (empty: feedback is off)")
}

// readKeyFile reads a secret from a file (trimmed); "" reads nothing.
func readKeyFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// parseDefaults reads feature=value,...
func parseDefaults(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("--feature-defaults: %q is not feature=number", kv)
		}
		out[k] = f
	}
	return out, nil
}
