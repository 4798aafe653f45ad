package approvals

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/starter"
)

// Keys verify tokens: an HS256 secret and/or RSA or ECDSA public keys.
type Keys struct {
	HMAC   []byte
	Public []crypto.PublicKey
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer, Audience string
}

// LoadKeys reads an HS256 secret file (its trimmed content) and PEM public key files.
func LoadKeys(hmacFile string, publicFiles []string) (Keys, error) {
	var k Keys
	if hmacFile != "" {
		b, err := os.ReadFile(hmacFile)
		if err != nil {
			return k, fmt.Errorf("read hs256 key: %w", err)
		}
		k.HMAC = []byte(strings.TrimSpace(string(b)))
		if len(k.HMAC) < 32 {
			return k, fmt.Errorf("hs256 key %s: %d bytes, want at least 32", hmacFile, len(k.HMAC))
		}
	}
	for _, f := range publicFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return k, fmt.Errorf("read public key: %w", err)
		}
		if pk, err := jwt.ParseRSAPublicKeyFromPEM(b); err == nil {
			k.Public = append(k.Public, pk)
			continue
		}
		pk, err := jwt.ParseECPublicKeyFromPEM(b)
		if err != nil {
			return k, fmt.Errorf("public key %s: not an RSA or ECDSA PEM key", f)
		}
		k.Public = append(k.Public, pk)
	}
	if len(k.HMAC) == 0 && len(k.Public) == 0 {
		return k, errors.New("approvals: no token verification keys configured")
	}
	return k, nil
}

// Claims are the token claims the endpoint uses.
type Claims struct {
	Groups []string `json:"groups,omitempty"`
	jwt.RegisteredClaims
}

// Verify checks a token's signature, algorithm and expiry (required) and returns its identity.
func (k Keys) Verify(token string) (policies.Subject, error) {
	var methods []string
	if len(k.HMAC) > 0 {
		methods = append(methods, "HS256")
	}
	if len(k.Public) > 0 {
		methods = append(methods, "RS256", "ES256")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if k.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(k.Issuer))
	}
	if k.Audience != "" {
		opts = append(opts, jwt.WithAudience(k.Audience))
	}
	var claims Claims
	var lastErr error
	try := func(key any) bool {
		claims = Claims{}
		_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil }, opts...)
		lastErr = err
		return err == nil
	}
	ok := len(k.HMAC) > 0 && try(k.HMAC)
	for _, pk := range k.Public {
		if ok {
			break
		}
		ok = try(pk)
	}
	if !ok {
		return policies.Subject{}, fmt.Errorf("invalid token: %w", lastErr)
	}
	if claims.Subject == "" {
		return policies.Subject{}, errors.New("invalid token: no subject")
	}
	return policies.Subject{ID: claims.Subject, Groups: claims.Groups}, nil
}

// Mint makes an HS256 token (for development and tests: production tokens come from the
// identity provider).
func Mint(secret []byte, subject string, groups []string, ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Groups: groups, RegisteredClaims: jwt.RegisteredClaims{
		Subject: subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}).SignedString(secret)
}

// Deciders send a decision to a run (starter.Decide in production).
type Decider func(ctx context.Context, model string, approve bool, a pipeline.Approval) (string, error)

// Server is the approvals endpoint.
type Server struct {
	Keys   Keys
	Engine *policies.Engine
	Audit  audit.Log
	Decide Decider
}

// NewServer wires a server to a Temporal client.
func NewServer(keys Keys, engine *policies.Engine, log audit.Log, c client.Client) *Server {
	return &Server{Keys: keys, Engine: engine, Audit: log, Decide: func(ctx context.Context, model string, approve bool, a pipeline.Approval) (string, error) {
		return starter.Decide(ctx, c, model, approve, a)
	}}
}

// Request is the body of POST /v1/models/{model}/approvals.
type Request struct {
	Version  int    `json:"version"`
	Decision string `json:"decision"` // approve or reject
	Reason   string `json:"reason"`
}

// Handler serves POST /v1/models/{model}/approvals and GET /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /v1/models/{model}/approvals", s.approve)
	return mux
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	model := r.PathValue("model")
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]any{"error": "invalid request body: " + err.Error()})
		return
	}
	if req.Decision != "approve" && req.Decision != "reject" {
		reply(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("decision: %q is not approve or reject", req.Decision)})
		return
	}
	record := func(actor, action, why string) {
		key := fmt.Sprintf("approvals-endpoint/%s/%s/%d/%s/%s/%d", actor, model, req.Version, req.Decision, action, time.Now().UnixNano())
		_, _ = s.Audit.Append(context.WithoutCancel(ctx), key, audit.Record{Actor: actor, Action: action, Model: model,
			Version: req.Version, Decision: req.Decision, Reason: why, Details: map[string]any{"request_reason": req.Reason, "remote": r.RemoteAddr}})
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		record("anonymous", "approval_unauthenticated", "no bearer token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="driftline"`)
		reply(w, http.StatusUnauthorized, map[string]any{"error": "a bearer token is required"})
		return
	}
	who, err := s.Keys.Verify(token)
	if err != nil {
		record("anonymous", "approval_unauthenticated", err.Error())
		w.Header().Set("WWW-Authenticate", `Bearer realm="driftline", error="invalid_token"`)
		reply(w, http.StatusUnauthorized, map[string]any{"error": err.Error()})
		return
	}
	d, err := s.Engine.Authorize(ctx, who, "approve", model)
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	if !d.Allow {
		record(who.ID, "approval_forbidden", strings.Join(d.Reasons, "; "))
		reply(w, http.StatusForbidden, map[string]any{"error": "not allowed to approve model " + model, "reasons": d.Reasons})
		return
	}
	out, err := s.Decide(ctx, model, req.Decision == "approve", pipeline.Approval{Approver: who.ID, Groups: who.Groups, Reason: req.Reason, Version: req.Version})
	if err != nil {
		var nf *serviceerror.NotFound
		code := http.StatusConflict
		if errors.As(err, &nf) {
			code = http.StatusNotFound
		}
		record(who.ID, "approval_refused", err.Error())
		reply(w, code, map[string]any{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, map[string]any{"result": out, "approver": who.ID})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
