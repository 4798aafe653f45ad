package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/driftline/driftline/approvals"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/policies"
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

func cmdApprovals(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("approvals", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	rbacPath := rbacFlag(fs)
	listen := fs.String("listen", ":8090", "HTTP address")
	hsKey := fs.String("hs256-key-file", env("DRIFTLINE_HS256_KEY_FILE", ""), "file with the HS256 secret that signs tokens (env DRIFTLINE_HS256_KEY_FILE)")
	pub := fs.String("public-keys", env("DRIFTLINE_JWT_PUBLIC_KEYS", ""), "comma-separated PEM files of RSA/ECDSA keys that sign tokens (env DRIFTLINE_JWT_PUBLIC_KEYS)")
	issuer := fs.String("issuer", "", "required token issuer (iss), if set")
	audience := fs.String("audience", "", "required token audience (aud), if set")
	if err := parse(fs, args); err != nil {
		return err
	}
	var pubs []string
	if *pub != "" {
		pubs = strings.Split(*pub, ",")
	}
	keys, err := approvals.LoadKeys(*hsKey, pubs)
	if err != nil {
		return err
	}
	keys.Issuer, keys.Audience = *issuer, *audience
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
	srv := &http.Server{Addr: *listen, Handler: approvals.NewServer(keys, engine, audit.Log{Store: b}, c).Handler(),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("approvals endpoint on %s (POST /v1/models/{model}/approvals)\n", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	key := fs.String("hs256-key-file", env("DRIFTLINE_HS256_KEY_FILE", ".data/approvals.key"), "HS256 secret file")
	sub := fs.String("sub", os.Getenv("USER"), "subject (user id)")
	groups := fs.String("groups", "", "comma-separated groups")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := parse(fs, args); err != nil {
		return err
	}
	k, err := approvals.LoadKeys(*key, nil)
	if err != nil {
		return err
	}
	var gs []string
	if *groups != "" {
		gs = strings.Split(*groups, ",")
	}
	tok, err := approvals.Mint(k.HMAC, *sub, gs, *ttl)
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
	body, _ := json.Marshal(approvals.Request{Version: version, Decision: decision, Reason: reason})
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
