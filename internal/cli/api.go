package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

func rbacFlag(fs *flag.FlagSet) *string {
	return fs.String("rbac", Env("DRIFTLINE_RBAC", "examples/rbac.yaml"), "RBAC file: who may do what on which model (env DRIFTLINE_RBAC)")
}

func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// tokenFlags choose how bearer tokens are verified: the identity provider's (OIDC, JWKS) or,
// with --dev, HS256 tokens from `driftline token`. The API and the console share them, so a
// token one accepts the other does.
type tokenFlags struct {
	dev                            *bool
	devKey, jwks, issuer, audience *string
}

func addTokenFlags(fs *flag.FlagSet) tokenFlags {
	return tokenFlags{
		dev:      fs.Bool("dev", false, "development mode: HS256 tokens signed with --dev-key-file (minted by `driftline token`), never for production"),
		devKey:   fs.String("dev-key-file", Env("DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key"), "HS256 secret of --dev (env DRIFTLINE_DEV_KEY_FILE)"),
		jwks:     fs.String("jwks-url", Env("DRIFTLINE_OIDC_JWKS_URL", ""), "the identity provider's JWKS URL (env DRIFTLINE_OIDC_JWKS_URL)"),
		issuer:   fs.String("issuer", Env("DRIFTLINE_OIDC_ISSUER", ""), "required token issuer, iss (env DRIFTLINE_OIDC_ISSUER)"),
		audience: fs.String("audience", Env("DRIFTLINE_OIDC_AUDIENCE", ""), "required token audience, aud (env DRIFTLINE_OIDC_AUDIENCE)"),
	}
}

func (t tokenFlags) verifier(who string) (api.Verifier, error) {
	if !*t.dev {
		return api.NewOIDC(*t.jwks, *t.issuer, *t.audience)
	}
	secret, err := os.ReadFile(*t.devKey)
	if err != nil {
		return nil, fmt.Errorf("--dev needs the HS256 secret in %s (make up writes it): %w", *t.devKey, err)
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	if len(secret) < 32 {
		return nil, fmt.Errorf("dev key %s: %d bytes, want at least 32", *t.devKey, len(secret))
	}
	slog.Warn("DEVELOPMENT MODE: "+who+" accepts HS256 tokens signed with a local secret; never run it like this in production", "key", *t.devKey)
	return api.DevHS256{Secret: secret}, nil
}

func cmdAPI(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	listen := fs.String("listen", ":8090", "HTTP address")
	tf := addTokenFlags(fs)
	corsOrigin := fs.String("codec-cors-origin", Env("DRIFTLINE_CODEC_CORS_ORIGIN", "http://localhost:8233"), "origin of the Temporal UI that uses /codec/ to decode payloads (with DRIFTLINE_PAYLOAD_KEY_FILE)")
	attestKey := fs.String("attestation-key-file", Env("DRIFTLINE_ATTESTATION_KEY_FILE", ".data/attestation.key"), "Ed25519 seed (hex) that signs approval decisions; created if missing with --dev")
	featureQueues := fs.String("feature-queues", Env("DRIFTLINE_FEATURES_QUEUE", ""), "comma-separated task queues materialization may run on besides the pipeline worker's (the serving workers' --features-queue)")
	minSchedule := fs.Duration("min-schedule-interval", api.DefaultMinScheduleInterval, "the shortest interval a schedule may fire at")
	onlineStore := fs.String("online-store", "", "the online store `features get --online` reads through the API: redis://<host:port>[/<prefix>], the one serving reads (a bolt: file is held by the process that opens it)")
	if err := Parse(fs, args); err != nil {
		return err
	}
	verifier, err := tf.verifier("the API")
	if err != nil {
		return err
	}
	att, err := api.LoadAttester(*attestKey, *tf.dev)
	if err != nil {
		return err
	}
	engine, err := loadEngine(ctx, *rbacPath)
	if err != nil {
		return err
	}
	b, c, err := config.Connect(ctx, s3)
	if err != nil {
		return err
	}
	defer c.Close()
	s := &api.Server{Verifier: verifier, Engine: engine, Audit: audit.Log{Store: b}, Runs: api.TemporalRuns{Client: c},
		Registry: registry.New(b), Attester: att, CORSOrigin: *corsOrigin, MinScheduleInterval: *minSchedule}
	if *onlineStore != "" {
		if s.Online, err = features.OpenStore(ctx, *onlineStore); err != nil {
			return err
		}
		defer s.Online.Close()
	}
	for _, q := range strings.Split(*featureQueues, ",") {
		if q = strings.TrimSpace(q); q != "" {
			s.FeatureQueues = append(s.FeatureQueues, q)
		}
	}
	if path := os.Getenv("DRIFTLINE_PAYLOAD_KEY_FILE"); path != "" {
		if s.Codec, err = codec.Load(path); err != nil {
			return err
		}
		slog.Info("payloads are encrypted; the Temporal UI decodes them through /codec/", "cors_origin", *corsOrigin)
	}
	// The last minute's record of refused anonymous calls is written at shutdown.
	defer func() { _ = s.FlushRefusals(context.WithoutCancel(ctx)) }()
	return serveHTTP(ctx, *listen, s.Handler(), fmt.Sprintf("control-plane API on %s (attestation key %s)", *listen, att.Key().KID))
}

// loadEngine reads the RBAC file into the OPA engine that authorises every call.
func loadEngine(ctx context.Context, path string) (*policies.Engine, error) {
	rbac, err := policies.LoadRBAC(path)
	if err != nil {
		return nil, err
	}
	return policies.NewEngine(ctx, rbac)
}

// serveHTTP serves h on addr until ctx ends (then shuts down within 10 s), saying so first.
func serveHTTP(ctx context.Context, addr string, h http.Handler, banner string) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Println(banner)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	key := fs.String("dev-key-file", Env("DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key"), "HS256 secret of `driftline api --dev`")
	sub := fs.String("sub", os.Getenv("USER"), "subject (user id)")
	groups := fs.String("groups", "", "comma-separated groups")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := Parse(fs, args); err != nil {
		return err
	}
	secret, err := os.ReadFile(*key)
	if err != nil {
		return fmt.Errorf("development tokens are signed with %s: %w", *key, err)
	}
	var gs []string
	if *groups != "" {
		gs = strings.Split(*groups, ",")
	}
	tok, err := api.MintDev([]byte(strings.TrimSpace(string(secret))), *sub, gs, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// PostDecision sends a decision on the candidate a model's run waits on through the API.
func PostDecision(ctx context.Context, url, token, model string, approve bool, version int, reason string) (string, error) {
	decision := "reject"
	if approve {
		decision = "approve"
	}
	c := &api.Client{BaseURL: url, Token: token}
	out, err := c.Decide(ctx, model, api.ApprovalRequest{Version: version, Decision: decision, Reason: reason})
	return out.Result, hint(err)
}
