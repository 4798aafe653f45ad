package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

func rbacFlag(fs *pflag.FlagSet) *string {
	return EnvFlag(fs, "rbac", "DRIFTLINE_RBAC", "examples/rbac.yaml", "RBAC file: who may do what on which model")
}

// tokenFlags choose how bearer tokens are verified: the identity provider's (OIDC, JWKS) or,
// with --dev, HS256 tokens from `driftline token`. The API and the console share them, so a
// token one accepts the other does.
type tokenFlags struct {
	dev                            *bool
	devKey, jwks, issuer, audience *string
}

func addTokenFlags(fs *pflag.FlagSet) tokenFlags {
	return tokenFlags{
		dev:      fs.Bool("dev", false, "development mode: HS256 tokens signed with --dev-key-file (minted by `driftline token`), never for production"),
		devKey:   EnvFlag(fs, "dev-key-file", "DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key", "HS256 secret of --dev"),
		jwks:     EnvFlag(fs, "jwks-url", "DRIFTLINE_OIDC_JWKS_URL", "", "the identity provider's JWKS URL"),
		issuer:   EnvFlag(fs, "issuer", "DRIFTLINE_OIDC_ISSUER", "", "required token issuer, iss"),
		audience: EnvFlag(fs, "audience", "DRIFTLINE_OIDC_AUDIENCE", "", "required token audience, aud"),
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

func apiCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "api", Short: "run the control-plane API: every change, authenticated, authorised and audited", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	listen := fs.String("listen", ":8090", "HTTP address")
	tf := addTokenFlags(fs)
	corsOrigin := EnvFlag(fs, "codec-cors-origin", "DRIFTLINE_CODEC_CORS_ORIGIN", "http://localhost:8233", "origin of the Temporal UI that uses /codec/ to decode payloads (with DRIFTLINE_PAYLOAD_KEY_FILE)")
	attestKey := EnvFlag(fs, "attestation-key-file", "DRIFTLINE_ATTESTATION_KEY_FILE", ".data/attestation.key", "Ed25519 seed (hex) that signs approval decisions; created if missing with --dev")
	featureQueues := EnvFlag(fs, "feature-queues", "DRIFTLINE_FEATURE_QUEUES", "", "comma-separated task queues materialization may run on besides the pipeline worker's (the serving workers' --features-queue)")
	minSchedule := fs.Duration("min-schedule-interval", api.DefaultMinScheduleInterval, "the shortest interval a schedule may fire at")
	onlineStore := fs.String("online-store", "", "the online store `features get --online` reads through the API: redis://<host:port>[/<prefix>], the one serving reads (a bolt: file is held by the process that opens it)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
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
	return cmd
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

func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "mint a development token for `driftline api --dev` (HS256)", Args: NoArgs}
	fs := cmd.Flags()
	key := EnvFlag(fs, "dev-key-file", "DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key", "HS256 secret of `driftline api --dev`")
	sub := EnvFlag(fs, "sub", "USER", "", "subject (user id)")
	groups := fs.String("groups", "", "comma-separated groups")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
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
	return cmd
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
