package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/internal/telemetry"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/azstore"
	"github.com/driftline/driftline/objstore/gcsstore"
	"github.com/driftline/driftline/objstore/s3store"
)

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v // set, even to "": an empty key means the AWS credential chain
	}
	return def
}

// StringEnv declares the string flag name on fs whose default is the environment variable env
// when it is set (even to ""), def otherwise. It is the one place a flag's variable is named:
// the help shows it and the flag carries it as the annotation "env".
func StringEnv(fs *pflag.FlagSet, p *string, name, env, def, usage string) {
	fs.StringVar(p, name, envOr(env, def), usage+" (env "+env+")")
	_ = fs.SetAnnotation(name, "env", []string{env})
}

// SecretEnv is StringEnv for a secret: its value, from the variable, never shows in the help.
func SecretEnv(fs *pflag.FlagSet, p *string, name, env, usage string) {
	StringEnv(fs, p, name, env, "", usage)
	fs.Lookup(name).DefValue = ""
}

// S3Flags registers the object-store flag group on fs, defaulting from DRIFTLINE_S3_*
// variables. There are no default credentials: empty keys use the AWS credential chain; the
// local stack (`make up`) writes its generated MinIO credentials to .data/dev.env. A key can
// also come from a file named by DRIFTLINE_S3_ACCESS_KEY_FILE / DRIFTLINE_S3_SECRET_KEY_FILE
// (Docker secrets).
func S3Flags(fs *pflag.FlagSet) *s3store.Config {
	c := &s3store.Config{}
	StringEnv(fs, &c.Endpoint, "s3-endpoint", "DRIFTLINE_S3_ENDPOINT", "http://127.0.0.1:9000", "S3 endpoint; empty for AWS")
	StringEnv(fs, &c.Region, "s3-region", "DRIFTLINE_S3_REGION", "us-east-1", "S3 region")
	StringEnv(fs, &c.Bucket, "s3-bucket", "DRIFTLINE_S3_BUCKET", "driftline", "bucket")
	StringEnv(fs, &c.Prefix, "s3-prefix", "DRIFTLINE_S3_PREFIX", "", "key prefix inside the bucket")
	SecretEnv(fs, &c.AccessKey, "s3-access-key", "DRIFTLINE_S3_ACCESS_KEY", "access key; empty for the AWS credential chain or DRIFTLINE_S3_ACCESS_KEY_FILE")
	SecretEnv(fs, &c.SecretKey, "s3-secret-key", "DRIFTLINE_S3_SECRET_KEY", "secret key, or DRIFTLINE_S3_SECRET_KEY_FILE")
	store := new(string)
	StringEnv(fs, store, "store", "DRIFTLINE_STORE", "", "the object store: empty for S3 (the --s3-* flags); gs://BUCKET[/PREFIX] for Google Cloud Storage (application default credentials; STORAGE_EMULATOR_HOST for an emulator); az://CONTAINER[/PREFIX] for Azure Blob (AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with the default credential chain)")
	storeURLs.Store(c, store)
	return c
}

// storeURLs holds each flag group's --store.
var storeURLs sync.Map // *s3store.Config -> *string

// temporalFlags are the Temporal flag group's values: set, they override TEMPORAL_ADDRESS and
// TEMPORAL_NAMESPACE for TemporalClient and Namespace (TLS, an API key and the rest still come
// from the SDK's environment configuration).
var temporalFlags struct{ Address, Namespace string }

// TemporalFlags registers the Temporal flag group on fs (the CLI's root: every command has it).
func TemporalFlags(fs *pflag.FlagSet) {
	StringEnv(fs, &temporalFlags.Address, "temporal-address", "TEMPORAL_ADDRESS", "", "Temporal frontend host:port (default localhost:7233)")
	StringEnv(fs, &temporalFlags.Namespace, "temporal-namespace", "TEMPORAL_NAMESPACE", "", "Temporal namespace (default \"default\")")
}

// Namespace is the Temporal namespace the process works in.
func Namespace() string {
	if temporalFlags.Namespace != "" {
		return temporalFlags.Namespace
	}
	if ns := os.Getenv("TEMPORAL_NAMESPACE"); ns != "" {
		return ns
	}
	return client.DefaultNamespace
}

// fromFile fills an empty value from the file named by the variable, if set.
func fromFile(v *string, fileVar string) error {
	f := os.Getenv(fileVar)
	if *v != "" || f == "" {
		return nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fileVar, err)
	}
	*v = strings.TrimSpace(string(b))
	return nil
}

// OpenBucket connects to the object store the flag group names: S3 (validated), Google Cloud
// Storage or Azure Blob.
func OpenBucket(ctx context.Context, c *s3store.Config) (objstore.Bucket, error) {
	store := ""
	if p, ok := storeURLs.Load(c); ok {
		store = *p.(*string)
	}
	switch {
	case store == "" || store == "s3":
		if err := errors.Join(fromFile(&c.AccessKey, "DRIFTLINE_S3_ACCESS_KEY_FILE"), fromFile(&c.SecretKey, "DRIFTLINE_S3_SECRET_KEY_FILE")); err != nil {
			return nil, err
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return s3store.New(ctx, *c)
	case strings.HasPrefix(store, "gs://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(store, "gs://"), "/")
		return gcsstore.New(ctx, gcsstore.Config{Bucket: bucket, Prefix: prefix})
	case strings.HasPrefix(store, "az://"):
		containerName, prefix, _ := strings.Cut(strings.TrimPrefix(store, "az://"), "/")
		cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
		if err := fromFile(&cs, "AZURE_STORAGE_CONNECTION_STRING_FILE"); err != nil {
			return nil, err
		}
		return azstore.New(azstore.Config{Container: containerName, Prefix: prefix, ConnectionString: cs, AccountURL: os.Getenv("AZURE_STORAGE_ACCOUNT_URL")})
	}
	return nil, fmt.Errorf("--store %q: want empty (S3), gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX]", store)
}

// EnsureBucket creates the store's bucket (S3, GCS in GOOGLE_CLOUD_PROJECT) or container
// (Azure) when it does not exist yet.
func EnsureBucket(ctx context.Context, b objstore.Bucket) error {
	switch s := b.(type) {
	case *s3store.S3:
		return s.EnsureBucket(ctx)
	case *gcsstore.GCS:
		return s.EnsureBucket(ctx, os.Getenv("GOOGLE_CLOUD_PROJECT"))
	case *azstore.Azure:
		return s.EnsureContainer(ctx)
	}
	return fmt.Errorf("no way to create the bucket of %T", b)
}

// TemporalClient dials Temporal with options from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and
// the rest of the standard environment (envconfig), defaulting to localhost:7233. With
// DRIFTLINE_PAYLOAD_KEY_FILE set, every payload it writes is encrypted (AES-256-GCM) and every
// payload it reads decrypted: workers, the API and the CLI must share the key. Each configure
// function sees the options last, before the dial (the worker adds its Update audit).
func TemporalClient(configure ...func(*client.Options)) (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("temporal client options: %w", err)
	}
	if path := os.Getenv("DRIFTLINE_PAYLOAD_KEY_FILE"); path != "" {
		c, err := codec.Load(path)
		if err != nil {
			return nil, err
		}
		opts.DataConverter = codec.DataConverter(c)
	}
	if temporalFlags.Address != "" {
		opts.HostPort = temporalFlags.Address
	}
	if temporalFlags.Namespace != "" {
		opts.Namespace = temporalFlags.Namespace
	}
	tis, err := TracingInterceptors()
	if err != nil {
		return nil, err
	}
	opts.Interceptors = append(opts.Interceptors, tis...)
	for _, f := range configure {
		f(&opts)
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w (is Temporal running? make up starts the dev server; TEMPORAL_ADDRESS names another)", orDefault(opts.HostPort, client.DefaultHostPort), err)
	}
	return c, nil
}

// TracingInterceptors are the Temporal SDK's OpenTelemetry interceptor on the global tracer
// provider (internal/telemetry) and Driftline's replay guard: on a client the first puts the
// caller's span into the workflow's headers, and the workers made from that client trace every
// workflow, activity, child and signal, so a run is one trace from `driftline run`, the API or
// the monitor through its steps. A workflow's span is started again each time its history is
// replayed (after a worker restart or cache eviction, and for every query of a closed
// workflow, temporalio/sdk-go PR 2060): its IDs are derived from the run (the same span every
// time, so later steps stay its children) and a start that is a replay is dropped at its end.
// Queries are not traced.
func TracingInterceptors() ([]interceptor.ClientInterceptor, error) {
	ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{DisableQueryTracing: true, SpanContextKey: workflowSpanKey{},
		SpanStarter: func(ctx context.Context, tr trace.Tracer, name string, opts ...trace.SpanStartOption) trace.Span {
			if strings.HasPrefix(name, "RunWorkflow:") {
				cfg := trace.NewSpanStartConfig(opts...)
				parent := trace.SpanContextFromContext(ctx)
				ctx = telemetry.WithSeed(ctx, fmt.Sprintf("%s/%s/%s/%d", name, parent.TraceID(), parent.SpanID(), cfg.Timestamp().UnixNano()))
			}
			_, span := tr.Start(ctx, name, opts...)
			return span
		}})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return []interceptor.ClientInterceptor{ti, &replayGuard{}}, nil
}

type workflowSpanKey struct{}

// replayGuard sits inside the tracing interceptor: a workflow function that ends while its
// history is being replayed, or that does not return (its coroutine stopped on eviction),
// marks the workflow span as replayed (telemetry.DropReplayed drops it).
type replayGuard struct{ interceptor.InterceptorBase }

func (g *replayGuard) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &replayGuardInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}}
}

type replayGuardInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (g *replayGuardInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (ret any, err error) {
	returned := false
	defer func() {
		if !returned || workflow.IsReplaying(ctx) {
			if sp, ok := ctx.Value(workflowSpanKey{}).(trace.Span); ok {
				sp.SetAttributes(attribute.Bool(telemetry.ReplayedAttr, true))
			}
		}
	}()
	ret, err = g.Next.ExecuteWorkflow(ctx, in)
	returned = true
	return ret, err
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Connect opens the bucket and dials Temporal; the caller closes the client.
func Connect(ctx context.Context, c *s3store.Config) (objstore.Bucket, client.Client, error) {
	b, err := OpenBucket(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	tc, err := TemporalClient()
	if err != nil {
		return nil, nil, err
	}
	return b, tc, nil
}
