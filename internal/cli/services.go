package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/telemetry"
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
			if err = b.EnsureBucket(ctx); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		fmt.Printf("bucket %s ready\n", s3.Bucket)
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
	cmd := &cobra.Command{Use: "worker", Short: "run the pipeline worker (task queue driftline-pipeline)", Args: NoArgs}
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
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		labelKey, err := readKeyFile(*labelKeyFile)
		if err != nil {
			return err
		}
		rbac, err := policies.LoadRBAC(*rbacPath)
		if err != nil {
			return err
		}
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
			UpdateAudit: refused})
		if err != nil {
			return err
		}
		fmt.Printf("pipeline worker on task queue driftline-pipeline; metrics on %s/metrics\n", *metrics)
		return p.Run(ctx)
	}
	return cmd
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
	enrichFeature := fs.String("enrich-feature", "", "feature to fill in when a request lacks it (e.g. temperature)")
	enrichURL := fs.String("enrich-url", "", "source of that feature, with {attribute} placeholders, answering {\"<feature>\": x}")
	enrichTimeout := fs.Duration("enrich-timeout", 100*time.Millisecond, "timeout of one enrichment call")
	enrichDefault := fs.Float64("enrich-default", 0, "value used when the source fails and no value was seen for the key")
	labelKeyFile := labelKeyFlag(fs)
	onlineStore := EnvFlag(fs, "online-store", "DRIFTLINE_ONLINE_STORE", "", "feature store online store to read (and, with --features-queue, materialize): bolt:<file> or redis://<host:port>[/<prefix>]")
	featureRepo := fs.String("feature-repo", "retail", "repository of the applied feature definitions (driftline features apply)")
	featureService := fs.String("feature-service", "", "feature service whose features requests may leave out: read from the online store by the entity's attributes")
	entityAttrs := fs.String("entity-attributes", "store_id,item_id", "request attributes that make the entity key, in the entity's key order")
	featureDefaults := fs.String("feature-defaults", "", "feature=value,... used when the store cannot give a value (else the request is refused)")
	featuresAsOf := fs.String("features-as-of", "", "read the online store as of this fixed time (RFC 3339) instead of now: replaying history (the demo's data is from 2026); ages and online_expiry are measured from it")
	featuresQueue := fs.String("features-queue", "", "also run the materialization chunks of this task queue against the online store (needed for the embedded store, which one process holds)")
	maxRows := fs.Int("max-rows", serving.DefaultMaxRows, "rows one request may hold (413 / RESOURCE_EXHAUSTED over it)")
	maxValues := fs.Int("max-values", serving.DefaultMaxValues, "values all of one request's input tensors may hold, checked from their shapes before decoding")
	maxExplain := fs.Int("max-explain-rows", serving.DefaultMaxExplainRows, "rows one request may ask explanations for")
	bodyBudget := fs.Int64("body-budget", serving.DefaultBodyBudget, "bytes all request bodies in flight may hold together (503 with Retry-After over it)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		labelKey, err := readKeyFile(*labelKeyFile)
		if err != nil {
			return err
		}
		var enrich []*serving.Enricher
		if *enrichFeature != "" {
			if *enrichURL == "" {
				return errors.New("--enrich-feature needs --enrich-url")
			}
			enrich = append(enrich, &serving.Enricher{Feature: *enrichFeature, URL: *enrichURL, Timeout: *enrichTimeout, Default: *enrichDefault})
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		host, _ := os.Hostname()
		var filler *serving.FeatureFiller
		if *onlineStore != "" {
			online, err := features.OpenStore(ctx, *onlineStore)
			if err != nil {
				return err
			}
			defer online.Close()
			if *featureService != "" {
				defaults, err := parseDefaults(*featureDefaults)
				if err != nil {
					return err
				}
				// The definitions are read when applied (serving may start first) and re-read
				// every 30 s, so a new version applied takes effect without a restart.
				filler = &serving.FeatureFiller{Store: online, Service: *featureService, Keys: strings.Split(*entityAttrs, ","), Defaults: defaults,
					Load: func(ctx context.Context) (features.Repo, bool, error) {
						_, repo, _, ok, err := features.Current(ctx, b, *featureRepo)
						return repo, ok, err
					}}
				if *featuresAsOf != "" {
					at, err := time.Parse(time.RFC3339, *featuresAsOf)
					if err != nil {
						return fmt.Errorf("--features-as-of %q: want RFC 3339: %w", *featuresAsOf, err)
					}
					filler.Now = func() time.Time { return at }
				}
			}
			if *featuresQueue != "" {
				c, err := config.TemporalClient()
				if err != nil {
					return err
				}
				defer c.Close()
				fw := sdkworker.New(c, *featuresQueue, sdkworker.Options{})
				fw.RegisterActivity(&activities.Features{Store: b, Online: online})
				if err := fw.Start(); err != nil {
					return fmt.Errorf("features worker on %s: %w", *featuresQueue, err)
				}
				defer fw.Stop()
			}
		}
		s, err := serving.New(serving.Options{Tracing: telemetry.Enabled(), Store: b, Models: strings.Split(*models, ","), Poll: *poll, LogFlush: *flush, Replica: host, Enrich: enrich,
			LabelKey: labelKey, Features: filler, MaxRows: *maxRows, MaxValues: *maxValues, MaxExplainRows: *maxExplain,
			BodyBudget: *bodyBudget})
		if err != nil {
			return err
		}
		s.Start(ctx)
		if *grpcListen != "" {
			ln, err := net.Listen("tcp", *grpcListen)
			if err != nil {
				return fmt.Errorf("--grpc %s: %w", *grpcListen, err)
			}
			g := s.GRPCServer()
			go func() {
				if err := g.Serve(ln); err != nil {
					slog.Error("gRPC", "error", err)
				}
			}()
			go func() { <-ctx.Done(); g.GracefulStop() }() // with the HTTP server's shutdown
			slog.Info("serving gRPC (Open Inference Protocol v2)", "addr", *grpcListen)
		}
		err = s.ListenAndServe(ctx, *listen)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return cmd
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
