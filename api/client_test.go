package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The client speaks every shape of the routes it calls: typed answers, and a refusal as an
// *Error with the status and the API's words.
func TestClientTypedAnswersAndRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := &Client{BaseURL: f.srv.URL, Token: f.idp.token(t, "RS256", "alice", nil)}
	m, err := alice.Model(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, m.Deployment.Production)
	require.Len(t, m.Versions, 2)
	sp, err := alice.Spec(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, 1, sp.Version)
	recs, err := alice.Audit(ctx, "demand", time.Hour)
	require.NoError(t, err)
	require.NotNil(t, recs)
	keys, err := alice.AttestationKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys.Keys, 1)

	dave := &Client{BaseURL: f.srv.URL, Token: f.idp.token(t, "ES256", "dave", nil)}
	_, err = dave.Decide(ctx, "demand", ApprovalRequest{Version: 2, Decision: "approve", Reason: "mine"})
	require.Equal(t, http.StatusForbidden, StatusOf(err))
	require.ErrorContains(t, err, "may not approve")
	nobody := &Client{BaseURL: f.srv.URL}
	_, err = nobody.StartRun(ctx, RunRequest{Model: "demand"})
	require.Equal(t, http.StatusUnauthorized, StatusOf(err))
	require.Zero(t, StatusOf(context.Canceled), "not an answer of the API")
}
