package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// idp is an OpenID Connect identity provider for tests: it publishes its current keys as JWKS
// over HTTP and signs tokens with them; rotate replaces the keys.
type idp struct {
	mu   sync.Mutex
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	gen  int
	srv  *httptest.Server
	hits int
}

func newIDP(t *testing.T) *idp {
	p := &idp{}
	p.rotate()
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.hits++
		b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		ecb, _ := p.ec.PublicKey.Bytes()
		type jwk struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use,omitempty"`
			N   string `json:"n,omitempty"`
			E   string `json:"e,omitempty"`
			Crv string `json:"crv,omitempty"`
			X   string `json:"x,omitempty"`
			Y   string `json:"y,omitempty"`
		}
		keys := []jwk{
			{Kty: "RSA", Kid: p.kid("rsa"), Use: "sig", N: b64(p.rsa.N.Bytes()), E: b64(big.NewInt(int64(p.rsa.E)).Bytes())},
			{Kty: "EC", Kid: p.kid("ec"), Crv: "P-256", X: b64(ecb[1:33]), Y: b64(ecb[33:])},
			{Kty: "OKP", Kid: p.kid("ed"), Crv: "Ed25519", X: b64(p.ed.Public().(ed25519.PublicKey))},
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) kid(kind string) string { return fmt.Sprintf("%s-%d", kind, p.gen) }

func (p *idp) rotate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	p.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, p.ed, _ = ed25519.GenerateKey(rand.Reader)
}

const testIssuer, testAudience = "https://idp.example", "driftline"

type tokenOpt func(c *Claims, h map[string]any)

func (p *idp) token(t *testing.T, alg, sub string, groups []string, opts ...tokenOpt) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	c := Claims{Groups: groups, RegisteredClaims: jwt.RegisteredClaims{Issuer: testIssuer, Audience: jwt.ClaimStrings{testAudience}, Subject: sub,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	var method jwt.SigningMethod
	var key any
	var kid string
	switch alg {
	case "RS256":
		method, key, kid = jwt.SigningMethodRS256, p.rsa, p.kid("rsa")
	case "ES256":
		method, key, kid = jwt.SigningMethodES256, p.ec, p.kid("ec")
	case "EdDSA":
		method, key, kid = jwt.SigningMethodEdDSA, p.ed, p.kid("ed")
	}
	h := map[string]any{"kid": kid}
	for _, o := range opts {
		o(&c, h)
	}
	tok := jwt.NewWithClaims(method, c)
	for k, v := range h {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestOIDCTokenTable(t *testing.T) {
	p := newIDP(t)
	o, err := NewOIDC(p.srv.URL, testIssuer, testAudience)
	require.NoError(t, err)
	o.MinRefetch = 0 // the rate limit has its own test
	ctx := context.Background()
	rsaPub := &p.rsa.PublicKey
	noneToken := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: testIssuer, Subject: "alice",
			Audience: jwt.ClaimStrings{testAudience}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	// HS256 with the RSA public key's bytes as the secret: the classic algorithm confusion.
	confused := func() string {
		c := Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: testIssuer, Subject: "alice", Audience: jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["kid"] = p.kid("rsa")
		s, _ := tok.SignedString(rsaPub.N.Bytes())
		return s
	}
	cases := []struct {
		name, token, want string
	}{
		{"valid RS256", p.token(t, "RS256", "alice", nil), ""},
		{"valid ES256", p.token(t, "ES256", "bob", []string{"retail"}), ""},
		{"valid EdDSA", p.token(t, "EdDSA", "erin", []string{"ml-platform"}), ""},
		{"expired", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), "expired"},
		{"no expiry", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.ExpiresAt = nil }), "exp claim is required"},
		{"wrong issuer", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.Issuer = "https://evil.example" }), "issuer"},
		{"wrong audience", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.Audience = jwt.ClaimStrings{"someone-else"} }), "audience"},
		{"unknown kid", p.token(t, "RS256", "alice", nil, func(_ *Claims, h map[string]any) { h["kid"] = "nobody" }), "unknown signing key"},
		{"alg none", noneToken(), "signing method none is invalid"},
		{"HS256 presented to an RS256 key", confused(), "signing method HS256 is invalid"},
		{"no subject", p.token(t, "RS256", "", nil), "no subject"},
		{"garbage", "not.a.token", "invalid token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			who, err := o.Verify(ctx, c.token)
			if c.want == "" {
				require.NoError(t, err)
				require.NotEmpty(t, who.ID)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	// Rotation: tokens signed with the new keys verify (their unknown kid triggers a fetch),
	// tokens of the retired keys are refused once the new set is in.
	old := p.token(t, "RS256", "alice", nil)
	p.rotate()
	fresh := p.token(t, "RS256", "alice", nil)
	_, err = o.Verify(ctx, fresh)
	require.NoError(t, err, "a rotated key is fetched when a token names it")
	_, err = o.Verify(ctx, old)
	require.ErrorIs(t, err, ErrUnknownKey)
	// Missing production settings are refused at start.
	_, err = NewOIDC(p.srv.URL, "", testAudience)
	require.ErrorContains(t, err, "required outside --dev")
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	p := newIDP(t)
	o, err := NewOIDC(p.srv.URL, testIssuer, testAudience)
	require.NoError(t, err)
	o.MinRefetch, o.Refresh = 500*time.Millisecond, time.Hour
	defer o.Close()
	ctx := context.Background()
	_, err = o.Verify(ctx, p.token(t, "RS256", "alice", nil))
	require.NoError(t, err)
	first := o.Fetches.Load()
	for i := range 50 {
		_, err := o.Verify(ctx, p.token(t, "RS256", "alice", nil, func(_ *Claims, h map[string]any) { h["kid"] = fmt.Sprint("bogus-", i) }))
		require.ErrorIs(t, err, ErrUnknownKey)
	}
	require.LessOrEqual(t, o.Fetches.Load(), first+1, "50 unknown kids within MinRefetch make at most one request")
	time.Sleep(o.MinRefetch + 100*time.Millisecond)
	before := o.Fetches.Load()
	_, _ = o.Verify(ctx, p.token(t, "RS256", "alice", nil, func(_ *Claims, h map[string]any) { h["kid"] = "bogus-late" }))
	require.Equal(t, before+1, o.Fetches.Load(), "after MinRefetch an unknown kid makes one more")
}

// The key set is refreshed every Refresh on its own: a rotation is picked up and the retired
// keys refused without any token asking for the new ones.
func TestKeysAreRefreshedOnTheirOwn(t *testing.T) {
	p := newIDP(t)
	o, err := NewOIDC(p.srv.URL, testIssuer, testAudience)
	require.NoError(t, err)
	o.MinRefetch, o.Refresh = time.Hour, 300*time.Millisecond
	defer o.Close()
	ctx := context.Background()
	old := p.token(t, "RS256", "alice", nil)
	_, err = o.Verify(ctx, old)
	require.NoError(t, err)
	p.rotate()
	require.Eventually(t, func() bool {
		_, err := o.Verify(ctx, old)
		return errors.Is(err, ErrUnknownKey)
	}, 5*time.Second, 50*time.Millisecond, "the retired key is dropped by a refresh")
	_, err = o.Verify(ctx, p.token(t, "RS256", "alice", nil))
	require.NoError(t, err)
}

// fakeRuns records what the API asked Temporal to do.
type fakeRuns struct {
	mu          sync.Mutex
	started     []pipeline.RunInput
	decided     []pipeline.Approval
	waiting     int
	calls       int
	monitor     []pipeline.MonitorInput
	review      *pipeline.FairnessReview
	acks        []pipeline.ReviewAck
	materialize []pipeline.MaterializeInput
	scheduled   []pipeline.RunInput
	rollouts    []pipeline.FleetRolloutInput
	stops       []pipeline.FleetStop
}

func (f *fakeRuns) Start(_ context.Context, in pipeline.RunInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.started = append(f.started, in)
	return "run-1", nil
}
func (f *fakeRuns) Cancel(context.Context, string, string) error { f.calls++; return nil }
func (f *fakeRuns) Waiting(context.Context, string) (string, int, error) {
	return "run-1", f.waiting, nil
}
func (f *fakeRuns) Decide(_ context.Context, _ string, _ bool, a pipeline.Approval) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.decided = append(f.decided, a)
	return "ok", nil
}
func (f *fakeRuns) CreateSchedule(_ context.Context, in pipeline.RunInput, _ string) (string, error) {
	f.calls++
	f.scheduled = append(f.scheduled, in)
	return "ct-schedule/demand", nil
}
func (f *fakeRuns) DeleteSchedule(context.Context, string) error { f.calls++; return nil }
func (f *fakeRuns) StartMonitor(_ context.Context, in pipeline.MonitorInput) (string, error) {
	f.calls++
	f.monitor = append(f.monitor, in)
	return "monitor-run", nil
}
func (f *fakeRuns) StopMonitor(context.Context, string) error { f.calls++; return nil }
func (f *fakeRuns) StartMaterialize(_ context.Context, in pipeline.MaterializeInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.materialize = append(f.materialize, in)
	return "materialize-run", nil
}
func (f *fakeRuns) Status(_ context.Context, model, runID string) (pipeline.Status, error) {
	return pipeline.Status{Model: model, Stage: pipeline.StageApproval, Reason: "run " + runID}, nil
}
func (f *fakeRuns) MonitorStatus(_ context.Context, model string) (pipeline.MonitorStatus, error) {
	return pipeline.MonitorStatus{Model: model, Windows: 3}, nil
}
func (f *fakeRuns) StartFleetRollout(_ context.Context, in pipeline.FleetRolloutInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.rollouts = append(f.rollouts, in)
	return "rollout-run", nil
}
func (f *fakeRuns) StopFleetRollout(_ context.Context, _, _ string, stop pipeline.FleetStop) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.stops = append(f.stops, stop)
	return nil
}
func (f *fakeRuns) OpenReview(context.Context, string) (*pipeline.FairnessReview, error) {
	return f.review, nil
}
func (f *fakeRuns) Acknowledge(_ context.Context, _ string, ack pipeline.ReviewAck) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.acks = append(f.acks, ack)
	return ack.Review + " " + ack.Decision, nil
}

type fixture struct {
	srv    *httptest.Server
	idp    *idp
	runs   *fakeRuns
	reg    *registry.Registry
	store  objstore.Bucket
	att    *Attester
	server *Server
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	p := newIDP(t)
	o, err := NewOIDC(p.srv.URL, testIssuer, testAudience)
	require.NoError(t, err)
	rbac, err := policies.LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	store := objstore.NewMem()
	reg := registry.New(store)
	// Two registered versions, v1 in production.
	m := &model.Model{Family: "linear", Objective: hparams.SquaredError, Features: []string{"x"}, Inputs: model.NumericInputs([]string{"x"}),
		Linear: &model.Linear{Coef: []float64{1}, Means: []float64{0}, Scales: []float64{1}}}
	art, err := m.Marshal()
	require.NoError(t, err)
	for i := range 2 {
		_, err := reg.Register(ctx, registry.Version{Model: "demand", Lineage: registry.Lineage{RunID: fmt.Sprint("r", i)}}, art, drift.Profile{}, nil)
		require.NoError(t, err)
	}
	_, err = reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Key: "init"}, func(d *registry.Deployment) (bool, error) { return d.Promote(1) })
	require.NoError(t, err)
	// demand's spec is registered (as a governance officer would through the API).
	raw := []byte(specYAML(t))
	sp, err := spec.Parse(raw)
	require.NoError(t, err)
	_, _, err = reg.ApplySpec(ctx, sp, raw, "", "grace", "initial", nil)
	require.NoError(t, err)
	_, seed, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{idp: p, runs: &fakeRuns{waiting: 2}, reg: reg, store: store, att: NewAttester(seed)}
	s := &Server{Verifier: o, Engine: engine, Audit: audit.Log{Store: store}, Runs: f.runs, Registry: reg, Attester: f.att,
		FeatureQueues: []string{"driftline-features"}}
	f.server = s
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func specYAML(t *testing.T) string {
	b, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	return string(b)
}

// Fifty mutation attempts of mixed kinds without the right to make them: every one refused,
// every one audited, and the registry unchanged.
func TestFiftyUnauthorisedMutationsAreRefusedAndAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before, beforeTag, err := f.reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	versions, err := f.reg.Versions(ctx, "demand")
	require.NoError(t, err)
	sp, _ := json.Marshal(RunRequest{Model: "demand", Force: true})
	sched, _ := json.Marshal(ScheduleRequest{Cron: "0 3 * * *"})
	mon, _ := json.Marshal(MonitorRequest{})
	defs, _ := os.ReadFile("../examples/features.yaml")
	feats, _ := json.Marshal(FeaturesRequest{Definitions: string(defs), Model: "demand", Reason: "x"})
	viewer := f.idp.token(t, "RS256", "victor", []string{"viewers"}) // bound to no role
	dave := f.idp.token(t, "ES256", "dave", nil)                     // data scientist: may start runs, not promote
	expired := f.idp.token(t, "RS256", "erin", []string{"ml-platform"}, func(c *Claims, _ map[string]any) {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	})
	forged := func() string { // an admin token signed by someone else's key
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, Claims{Groups: []string{"ml-platform"}, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Audience: jwt.ClaimStrings{testAudience}, Subject: "mallory", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
		tok.Header["kid"] = f.idp.kid("rsa")
		s, _ := tok.SignedString(k)
		return s
	}()
	attempts := []struct{ method, path, body string }{
		{"POST", "/v1/runs", string(sp)},
		{"POST", "/v1/models/demand/runs/cancel", `{"reason":"x"}`},
		{"POST", "/v1/models/demand/approvals", `{"version":2,"decision":"approve","reason":"x"}`},
		{"POST", "/v1/models/demand/promote", `{"version":2,"reason":"x"}`},
		{"POST", "/v1/models/demand/rollback", `{"reason":"x"}`},
		{"PUT", "/v1/models/demand/aliases/challenger", `{"version":2,"reason":"x"}`},
		{"PUT", "/v1/models/demand/schedule", string(sched)},
		{"DELETE", "/v1/models/demand/schedule", ``},
		{"PUT", "/v1/models/demand/monitor", string(mon)},
		{"DELETE", "/v1/models/demand/monitor", ``},
		{"POST", "/v1/models/demand/monitor/reviews/fairness-1", `{"decision":"accept","reason":"x"}`},
		{"PUT", "/v1/features/retail", string(feats)},
	}
	tokens := []struct {
		token string
		code  int
	}{{"", 401}, {"garbage", 401}, {expired, 401}, {forged, 401}, {viewer, 403}, {dave, 403}}
	n := 0
	for n < 50 {
		a := attempts[n%len(attempts)]
		tk := tokens[n%len(tokens)]
		if tk.token == dave && (a.path == "/v1/runs" || strings.HasSuffix(a.path, "/schedule") || strings.HasSuffix(a.path, "/monitor") || strings.HasSuffix(a.path, "/cancel") || strings.HasPrefix(a.path, "/v1/features/")) {
			tk = tokens[4] // dave may do these: use the viewer instead
		}
		code, out := f.call(t, a.method, a.path, tk.token, a.body)
		require.Equal(t, tk.code, code, "%s %s: %v", a.method, a.path, out)
		n++
	}
	require.NoError(t, f.server.FlushRefusals(ctx))
	recs, err := audit.Log{Store: f.store}.List(ctx, "", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	refused, records := 0, 0
	for _, r := range recs {
		switch {
		case r.Action == "refused_anonymous": // the minute's counts of calls with no verified identity
			refused += int(r.Details["total"].(float64))
			records++
		case r.Decision == "refused":
			refused++
			records++
		}
	}
	require.Equal(t, 50, refused, "every refusal is audited")
	require.Less(t, records, 30, "the anonymous ones in one record of counts, not a record each")
	after, afterTag, err := f.reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, beforeTag, afterTag, "the deployment pointer did not change")
	require.Equal(t, before, after)
	vs, err := f.reg.Versions(ctx, "demand")
	require.NoError(t, err)
	require.Len(t, vs, len(versions))
	require.Zero(t, f.runs.calls, "nothing reached Temporal")
}

// The self-declared admin: the identity is the token's, never the caller's claim;
// an approval through the API is attested for the run and version it waits on.
func TestAllowedCallsActAsTheTokenSaysAndAreAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dave := f.idp.token(t, "ES256", "dave", nil)
	sp, _ := json.Marshal(RunRequest{Model: "demand", Force: true})
	code, out := f.call(t, "POST", "/v1/runs", dave, string(sp))
	require.Equal(t, 200, code, out)
	require.Equal(t, "dave", f.runs.started[0].RequestedBy, "who started the run is who the token says")
	mon, _ := json.Marshal(MonitorRequest{RunFrom: "2026-10-03", RunTo: "2026-10-30"})
	code, out = f.call(t, "PUT", "/v1/models/demand/monitor", dave, string(mon))
	require.Equal(t, 200, code, out)
	require.Equal(t, "monitor/demand", out["workflow_id"])
	require.Equal(t, "dave", f.runs.monitor[0].RequestedBy)
	require.Equal(t, "2026-10-03", f.runs.monitor[0].RunFrom)
	code, out = f.call(t, "PUT", "/v1/models/returns/monitor", dave, string(mon))
	require.Equal(t, 404, code, "returns has no registered spec: %v", out)
	require.Contains(t, out["error"], "model returns has no registered spec (driftline models apply)")
	code, out = f.call(t, "DELETE", "/v1/models/demand/monitor", dave, "")
	require.Equal(t, 200, code, out)
	alice := f.idp.token(t, "RS256", "alice", nil)
	code, out = f.call(t, "POST", "/v1/models/demand/approvals", alice, `{"version":3,"decision":"approve","reason":"x"}`)
	require.Equal(t, 409, code, "the run waits on v2: %v", out)
	code, out = f.call(t, "POST", "/v1/models/demand/approvals", alice, `{"version":2,"decision":"approve","reason":"evidence reviewed"}`)
	require.Equal(t, 200, code, out)
	dec := f.runs.decided[0]
	att, err := pipeline.VerifyAttestation(dec.Attestation, []pipeline.AttestationKey{f.att.Key()}, time.Now())
	require.NoError(t, err)
	require.Equal(t, pipeline.Attested{Model: "demand", Version: 2, RunID: "run-1", Decision: "approve", Subject: "alice", Reason: "evidence reviewed",
		IssuedAt: att.IssuedAt, Expires: att.Expires, ID: att.ID, Issuer: "driftline-api"}, att)
	erin := f.idp.token(t, "EdDSA", "erin", []string{"ml-platform"})
	code, out = f.call(t, "POST", "/v1/models/demand/promote", erin, `{"version":2,"reason":"hotfix"}`)
	require.Equal(t, 200, code, out)
	d, _, err := f.reg.Deployment(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 2, d.Production)
	require.Equal(t, "erin", d.UpdatedBy)
	code, _ = f.call(t, "POST", "/v1/models/demand/rollback", alice, `{"reason":"bad metrics"}`)
	require.Equal(t, 200, code)
	code, out = f.call(t, "POST", "/v1/models/demand/rollback", alice, `{"reason":""}`)
	require.Equal(t, 400, code, "a reason is required: %v", out)
	recs, err := audit.Log{Store: f.store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var allowed []string
	for _, r := range recs {
		if r.Decision == "allowed" {
			allowed = append(allowed, r.Actor+" "+r.Action)
		}
	}
	require.Subset(t, allowed, []string{"dave start_run", "dave change_monitor", "alice approve", "erin promote", "alice rollback"})
	code, keys := f.call(t, "GET", "/v1/attestation-keys", "", "")
	require.Equal(t, 200, code)
	require.Len(t, keys["keys"], 1)
}

// A fairness review is acknowledged through the API: the API attests who decided what on
// which review (the monitor verifies it); a data scientist may not, a decision on a review
// that is not the open one is refused, and so are unknown decisions and missing reasons.
func TestAcknowledgeAFairnessReviewIsAttested(t *testing.T) {
	f := newFixture(t)
	f.runs.review = &pipeline.FairnessReview{ID: "fairness-20261201T150000Z", Model: "demand", Version: 2}
	path := "/v1/models/demand/monitor/reviews/fairness-20261201T150000Z"
	dave := f.idp.token(t, "ES256", "dave", nil)
	alice := f.idp.token(t, "RS256", "alice", nil)
	code, out := f.call(t, "POST", path, dave, `{"decision":"accept","reason":"fine"}`)
	require.Equal(t, 403, code, "a data scientist may not acknowledge: %v", out)
	code, out = f.call(t, "POST", "/v1/models/demand/monitor/reviews/fairness-older", alice, `{"decision":"accept","reason":"fine"}`)
	require.Equal(t, 409, code, out)
	require.Contains(t, out["error"], "open: fairness-20261201T150000Z")
	code, out = f.call(t, "POST", path, alice, `{"decision":"ignore","reason":"fine"}`)
	require.Equal(t, 400, code, out)
	code, out = f.call(t, "POST", path, alice, `{"decision":"accept","reason":" "}`)
	require.Equal(t, 400, code, out)
	require.Empty(t, f.runs.acks, "nothing refused reached the monitor")
	code, out = f.call(t, "POST", path, alice, `{"decision":"retrain","reason":"the north region's error doubled"}`)
	require.Equal(t, 200, code, out)
	require.Len(t, f.runs.acks, 1)
	att, err := pipeline.VerifyAttestation(f.runs.acks[0].Attestation, []pipeline.AttestationKey{f.att.Key()}, time.Now())
	require.NoError(t, err)
	require.Equal(t, pipeline.Attested{Kind: pipeline.KindReview, Model: "demand", Version: 2, Review: "fairness-20261201T150000Z", Decision: "retrain", Subject: "alice",
		Reason: "the north region's error doubled", IssuedAt: att.IssuedAt, Expires: att.Expires, ID: att.ID, Issuer: "driftline-api"}, att)
	recs, err := audit.Log{Store: f.store}.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var seen []string
	for _, r := range recs {
		seen = append(seen, r.Actor+" "+r.Action+" "+r.Decision)
	}
	require.Subset(t, seen, []string{"dave approve_forbidden refused", "alice acknowledge_review_failed refused", "alice acknowledge_review allowed"})
}

func TestDevTokens(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	d := DevHS256{Secret: secret}
	tok, err := MintDev(secret, "alice", []string{"g"}, time.Minute)
	require.NoError(t, err)
	who, err := d.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, policies.Subject{ID: "alice", Groups: []string{"g"}}, who)
	other, _ := MintDev([]byte(strings.Repeat("x", 32)), "alice", nil, time.Minute)
	_, err = d.Verify(context.Background(), other)
	require.Error(t, err)
}

// The codec endpoint decodes payloads for the Temporal UI, for identities that may view every
// model only.
func TestCodecEndpoint(t *testing.T) {
	f := newFixture(t)
	c, err := codec.New("k", make([]byte, 32))
	require.NoError(t, err)
	rbac, _ := policies.LoadRBAC("../examples/rbac.yaml")
	engine, _ := policies.NewEngine(context.Background(), rbac)
	o, _ := NewOIDC(f.idp.srv.URL, testIssuer, testAudience)
	srv := httptest.NewServer((&Server{Verifier: o, Engine: engine, Audit: audit.Log{Store: f.store}, Codec: c, CORSOrigin: "http://ui"}).Handler())
	defer srv.Close()
	p, err := codec.DataConverter(c).ToPayload("the approval reason")
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	require.NoError(t, err)
	post := func(token string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/codec/decode", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := post("")
	require.Equal(t, 401, code)
	code, _ = post(f.idp.token(t, "RS256", "alice", nil)) // approver of demand only
	require.Equal(t, 403, code)
	code, out := post(f.idp.token(t, "RS256", "erin", []string{"ml-platform"}))
	require.Equal(t, 200, code, out)
	require.Contains(t, out, base64.StdEncoding.EncodeToString([]byte(`"the approval reason"`)))
}

// The token table through the API itself: each token gets its status, and every call, allowed
// or refused, leaves an audit record.
func TestTokenTableThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.idp
	body := `{"reason":"token table"}`
	cases := []struct {
		name, token string
		code        int
	}{
		{"valid RS256, approver", p.token(t, "RS256", "alice", nil), 200},
		{"valid ES256, approver", p.token(t, "ES256", "bob", nil), 200},
		{"valid EdDSA, admin group", p.token(t, "EdDSA", "erin", []string{"ml-platform"}), 200},
		{"expired", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), 401},
		{"wrong issuer", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.Issuer = "https://evil.example" }), 401},
		{"wrong audience", p.token(t, "RS256", "alice", nil, func(c *Claims, _ map[string]any) { c.Audience = jwt.ClaimStrings{"other"} }), 401},
		{"unknown kid", p.token(t, "RS256", "alice", nil, func(_ *Claims, h map[string]any) { h["kid"] = "nobody" }), 401},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: testIssuer, Subject: "alice",
				Audience: jwt.ClaimStrings{testAudience}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), 401},
		{"HS256 with the RSA public key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: testIssuer, Subject: "alice",
				Audience: jwt.ClaimStrings{testAudience}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
			tok.Header["kid"] = p.kid("rsa")
			s, _ := tok.SignedString(p.rsa.PublicKey.N.Bytes())
			return s
		}(), 401},
		{"wrong role (data scientist)", p.token(t, "RS256", "dave", nil), 403},
	}
	for i, c := range cases {
		var err error
		// Promote the other version first, so there is always a previous one to roll back to.
		_, err = f.reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Key: fmt.Sprint("reset", i)},
			func(d *registry.Deployment) (bool, error) { return d.Promote(3 - d.Production) })
		require.NoError(t, err)
		before, err := audit.Log{Store: f.store}.List(ctx, "", time.Now().Add(-time.Hour))
		require.NoError(t, err)
		code, out := f.call(t, "POST", "/v1/models/demand/rollback", c.token, body)
		require.Equal(t, c.code, code, "%s: %v", c.name, out)
		require.NoError(t, f.server.FlushRefusals(ctx))
		after, err := audit.Log{Store: f.store}.List(ctx, "", time.Now().Add(-time.Hour))
		require.NoError(t, err)
		var rollbacks int
		for _, r := range after[len(before):] {
			if r.Details["path"] == "/v1/models/demand/rollback" { // the API's record of the call
				rollbacks++
			}
			if r.Action == "refused_anonymous" { // no verified identity: counted in the minute's record
				for _, l := range r.Details["counts"].([]any) {
					if l.(map[string]any)["action"] == "rollback_unauthenticated" {
						rollbacks += int(l.(map[string]any)["count"].(float64))
					}
				}
			}
		}
		require.Equal(t, 1, rollbacks, "%s: one audit record of the call", c.name)
	}
}

// Feature definitions are applied through the API: checked against the spec's contract
// (a bad definition is refused, naming the problem, and nothing is recorded), authorised as
// change_features on the spec's model, versioned, audited with what changed; applying the
// same definitions again changes nothing.
func TestApplyFeatureDefinitions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	defs, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	body := func(d string) string {
		b, _ := json.Marshal(FeaturesRequest{Definitions: d, Model: "demand", Reason: "demand history for the forecast"})
		return string(b)
	}
	dave := f.idp.token(t, "ES256", "dave", nil)
	alice := f.idp.token(t, "RS256", "alice", nil)
	code, out := f.call(t, "PUT", "/v1/features/retail", alice, body(string(defs)))
	require.Equal(t, 403, code, "an approver may not change features: %v", out)
	broken := strings.Replace(string(defs), "column: units_sold, window: 168h", "column: units_sol, window: 168h", 1)
	code, out = f.call(t, "PUT", "/v1/features/retail", dave, body(broken))
	require.Equal(t, 400, code, out)
	require.Contains(t, out["error"], `feature "units_7d": column "units_sol" is not a column of dataset retail_demand`)
	_, _, _, ok, err := features.Current(ctx, f.store, "retail")
	require.NoError(t, err)
	require.False(t, ok, "nothing half-applied")
	code, out = f.call(t, "PUT", "/v1/features/retail", dave, body(string(defs)))
	require.Equal(t, 200, code, out)
	require.EqualValues(t, 1, out["version"])
	require.Equal(t, true, out["changed"])
	require.Len(t, out["changes"], 1+1+5+1, "an entity, a view, five features, a service added")
	code, out = f.call(t, "PUT", "/v1/features/retail", dave, body(string(defs)))
	require.Equal(t, 200, code, out)
	require.Equal(t, false, out["changed"], "the same definitions again")
	require.EqualValues(t, 1, out["version"])
	more := strings.Replace(string(defs), "window: 168h}", "window: 336h}", 1)
	code, out = f.call(t, "PUT", "/v1/features/retail", dave, body(more))
	require.Equal(t, 200, code, out)
	require.EqualValues(t, 2, out["version"])
	require.Equal(t, []any{map[string]any{"kind": "feature", "name": "demand_history:units_7d", "action": "change"}}, out["changes"])
	applied, repo, _, ok, err := features.Current(ctx, f.store, "retail")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "dave", applied.AppliedBy)
	v, _ := repo.View("demand_history")
	require.Equal(t, 336*time.Hour, v.Features[1].Window.Duration)
	mat := func(view string) string {
		b, _ := json.Marshal(MaterializeRequest{View: view, Model: "demand", From: "2026-10-01", To: "2026-10-30T12:00:00Z", Chunk: "12h"})
		return string(b)
	}
	code, out = f.call(t, "POST", "/v1/features/retail/materialize", dave, mat("no_view"))
	require.Equal(t, 400, code, out)
	code, out = f.call(t, "POST", "/v1/features/retail/materialize", dave, mat("demand_history"))
	require.Equal(t, 200, code, out)
	require.Equal(t, "materialize/retail/demand_history", out["workflow_id"])
	require.Len(t, f.runs.materialize, 1)
	m := f.runs.materialize[0]
	require.Equal(t, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), m.Watermark)
	require.Equal(t, time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC), m.Until)
	require.Equal(t, 12*time.Hour, m.Chunk)
	recs, err := audit.Log{Store: f.store}.List(ctx, "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var seen []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "change_features") {
			seen = append(seen, r.Actor+" "+r.Action+" "+r.Decision)
		}
	}
	require.Equal(t, []string{"alice change_features_forbidden refused", "dave change_features_failed refused", "dave change_features allowed",
		"dave change_features allowed", "dave change_features allowed", "dave change_features_failed refused", "dave change_features allowed"}, seen)
}
