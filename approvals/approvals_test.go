package approvals

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	srv     *httptest.Server
	log     audit.Log
	decided []pipeline.Approval
	refuse  error
}

func newFixture(t *testing.T, keys Keys) *fixture {
	t.Helper()
	rbac, err := policies.LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	engine, err := policies.NewEngine(context.Background(), rbac)
	require.NoError(t, err)
	f := &fixture{log: audit.Log{Store: objstore.NewMem()}}
	s := &Server{Keys: keys, Engine: engine, Audit: f.log, Decide: func(_ context.Context, model string, approve bool, a pipeline.Approval) (string, error) {
		if f.refuse != nil {
			return "", f.refuse
		}
		f.decided = append(f.decided, a)
		return "ok", nil
	}}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) post(t *testing.T, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/models/demand/approvals", strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) audited(t *testing.T, action string) []audit.Record {
	t.Helper()
	recs, err := f.log.List(context.Background(), "demand", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	var out []audit.Record
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

const body = `{"version": 2, "decision": "approve", "reason": "evidence reviewed"}`

func TestTokensAndRoles(t *testing.T) {
	f := newFixture(t, Keys{HMAC: secret})
	alice, err := Mint(secret, "alice", nil, time.Hour)
	require.NoError(t, err)
	dave, err := Mint(secret, "dave", []string{"analysts"}, time.Hour)
	require.NoError(t, err)
	expired, err := Mint(secret, "alice", nil, -time.Hour)
	require.NoError(t, err)
	forged, err := Mint([]byte("another-secret-another-secret-!!"), "alice", nil, time.Hour)
	require.NoError(t, err)
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}).SignedString(secret)
	require.NoError(t, err)
	platform, err := Mint(secret, "erin", []string{"ml-platform"}, time.Hour)
	require.NoError(t, err)

	require.Equal(t, http.StatusUnauthorized, f.post(t, "", body), "missing token")
	require.Equal(t, http.StatusUnauthorized, f.post(t, expired, body), "expired token")
	require.Equal(t, http.StatusUnauthorized, f.post(t, forged, body), "wrong signature")
	require.Equal(t, http.StatusUnauthorized, f.post(t, noExp, body), "no expiry")
	require.Equal(t, http.StatusUnauthorized, f.post(t, "not.a.jwt", body), "garbage")
	require.Equal(t, http.StatusForbidden, f.post(t, dave, body), "data scientists do not approve")
	require.Empty(t, f.decided, "no refused request reached the run")
	require.Len(t, f.audited(t, "approval_unauthenticated"), 5)
	forbidden := f.audited(t, "approval_forbidden")
	require.Len(t, forbidden, 1)
	require.Equal(t, "dave", forbidden[0].Actor)

	require.Equal(t, http.StatusOK, f.post(t, alice, body))
	require.Equal(t, http.StatusOK, f.post(t, platform, body), "a group grants the role")
	require.Equal(t, []pipeline.Approval{
		{Approver: "alice", Reason: "evidence reviewed", Version: 2},
		{Approver: "erin", Groups: []string{"ml-platform"}, Reason: "evidence reviewed", Version: 2},
	}, f.decided)

	f.refuse = errors.New("this run is waiting for a decision on v3, not v2")
	require.Equal(t, http.StatusConflict, f.post(t, alice, body))
	refused := f.audited(t, "approval_refused")
	require.Len(t, refused, 1)
	require.Contains(t, refused[0].Reason, "not v2")

	require.Equal(t, http.StatusBadRequest, f.post(t, alice, `{"version": 2, "decision": "maybe", "reason": "x"}`))
	require.Equal(t, http.StatusBadRequest, f.post(t, alice, `{"version": 2, "decision": "approve", "why": "x"}`))
}

func TestRS256PublicKeys(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "idp.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	keys, err := LoadKeys("", []string{path})
	require.NoError(t, err)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(key)
	require.NoError(t, err)
	who, err := keys.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "alice", who.ID)
	hs, err := Mint(secret, "alice", nil, time.Hour)
	require.NoError(t, err)
	_, err = keys.Verify(hs)
	require.Error(t, err, "an HS256 token is refused when only public keys are configured")
	_, err = LoadKeys("", nil)
	require.ErrorContains(t, err, "no token verification keys")
}
