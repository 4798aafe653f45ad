package main

import (
	"context"
	"encoding/json"
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
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

func rbacFlag(fs *flag.FlagSet) *string {
	return fs.String("rbac", env("DRIFTLINE_RBAC", "examples/rbac.yaml"), "RBAC file: who may do what on which model (env DRIFTLINE_RBAC)")
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func cmdAPI(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	listen := fs.String("listen", ":8090", "HTTP address")
	dev := fs.Bool("dev", false, "development mode: HS256 tokens signed with --dev-key-file (minted by `driftline token`), never for production")
	devKey := fs.String("dev-key-file", env("DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key"), "HS256 secret of --dev (env DRIFTLINE_DEV_KEY_FILE)")
	jwks := fs.String("jwks-url", env("DRIFTLINE_OIDC_JWKS_URL", ""), "the identity provider's JWKS URL (env DRIFTLINE_OIDC_JWKS_URL)")
	issuer := fs.String("issuer", env("DRIFTLINE_OIDC_ISSUER", ""), "required token issuer, iss (env DRIFTLINE_OIDC_ISSUER)")
	audience := fs.String("audience", env("DRIFTLINE_OIDC_AUDIENCE", ""), "required token audience, aud (env DRIFTLINE_OIDC_AUDIENCE)")
	corsOrigin := fs.String("codec-cors-origin", env("DRIFTLINE_CODEC_CORS_ORIGIN", "http://localhost:8233"), "origin of the Temporal UI that uses /codec/ to decode payloads (with DRIFTLINE_PAYLOAD_KEY_FILE)")
	attestKey := fs.String("attestation-key-file", env("DRIFTLINE_ATTESTATION_KEY_FILE", ".data/attestation.key"), "Ed25519 seed (hex) that signs approval decisions; created if missing with --dev")
	if err := parse(fs, args); err != nil {
		return err
	}
	var verifier api.Verifier
	if *dev {
		secret, err := os.ReadFile(*devKey)
		if err != nil {
			return fmt.Errorf("--dev needs the HS256 secret in %s: %w", *devKey, err)
		}
		secret = []byte(strings.TrimSpace(string(secret)))
		if len(secret) < 32 {
			return fmt.Errorf("dev key %s: %d bytes, want at least 32", *devKey, len(secret))
		}
		slog.Warn("DEVELOPMENT MODE: the API accepts HS256 tokens signed with a local secret; never run it like this in production", "key", *devKey)
		verifier = api.DevHS256{Secret: secret}
	} else {
		o, err := api.NewOIDC(*jwks, *issuer, *audience)
		if err != nil {
			return err
		}
		verifier = o
	}
	att, err := api.LoadAttester(*attestKey, *dev)
	if err != nil {
		return err
	}
	rbac, err := policies.LoadRBAC(*rbacPath)
	if err != nil {
		return err
	}
	engine, err := policies.NewEngine(ctx, rbac)
	if err != nil {
		return err
	}
	b, c, err := config.Connect(ctx, s3)
	if err != nil {
		return err
	}
	defer c.Close()
	s := &api.Server{Verifier: verifier, Engine: engine, Audit: audit.Log{Store: b}, Runs: api.TemporalRuns{Client: c},
		Registry: registry.New(b), Attester: att, CORSOrigin: *corsOrigin}
	if path := os.Getenv("DRIFTLINE_PAYLOAD_KEY_FILE"); path != "" {
		if s.Codec, err = codec.Load(path); err != nil {
			return err
		}
		slog.Info("payloads are encrypted; the Temporal UI decodes them through /codec/", "cors_origin", *corsOrigin)
	}
	srv := &http.Server{Addr: *listen, Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("control-plane API on %s (attestation key %s)\n", *listen, att.Key().KID)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	key := fs.String("dev-key-file", env("DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key"), "HS256 secret of `driftline api --dev`")
	sub := fs.String("sub", os.Getenv("USER"), "subject (user id)")
	groups := fs.String("groups", "", "comma-separated groups")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := parse(fs, args); err != nil {
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

// postDecision sends a decision to the approvals endpoint.
func postDecision(ctx context.Context, url, token, model string, approve bool, version int, reason string) (string, error) {
	decision := "reject"
	if approve {
		decision = "approve"
	}
	body, _ := json.Marshal(api.ApprovalRequest{Version: version, Decision: decision, Reason: reason})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/v1/models/"+model+"/approvals", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("approvals endpoint %s: %w", url, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result  string   `json:"result"`
		Error   string   `json:"error"`
		Reasons []string `json:"reasons"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		msg := out.Error
		if len(out.Reasons) > 0 {
			msg += ": " + strings.Join(out.Reasons, "; ")
		}
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return out.Result, nil
}
