package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/registry"
)

// A device (or its agent) fetches the production version's signed bundle: 404 naming why
// before there is one, the bundle with an ETag, a 304 while production is unchanged, the new
// version's bundle after a promotion; a caller without view on the model is refused.
func TestDevicesFetchTheProductionBundle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.idp.token(t, "RS256", "alice", nil) // an approver of demand: view
	get := func(token, etag string) (int, []byte, http.Header) {
		return getBundle(t, f.srv.URL+"/v1/models/demand/edge-bundle", token, etag)
	}
	code, body, _ := get(alice, "")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, string(body), "version 1 of demand has no edge bundle")

	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	issueEdgeBundles(t, f, key)
	code, body, h := get(alice, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "1", h.Get("X-Driftline-Version"))
	dev, err := edge.Load(body, edge.Options{Keys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	require.Equal(t, 1, dev.Manifest.Version)
	code, _, _ = get(alice, h.Get("ETag"))
	require.Equal(t, http.StatusNotModified, code, "unchanged production: 304")

	_, err = f.reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Key: "v2"}, func(d *registry.Deployment) (bool, error) { return d.Promote(2) })
	require.NoError(t, err)
	code, body, h2 := get(alice, h.Get("ETag"))
	require.Equal(t, http.StatusOK, code, "a promotion changes the bundle")
	require.Equal(t, "2", h2.Get("X-Driftline-Version"))
	dev2, err := edge.Load(body, edge.Options{Keys: []ed25519.PublicKey{pub}, Installed: dev.Manifest.Counter})
	require.NoError(t, err, "the newer bundle installs over the older")
	require.Equal(t, 2, dev2.Manifest.Version)

	code, _, _ = get(f.idp.token(t, "RS256", "mallory", nil), "")
	require.Equal(t, http.StatusForbidden, code, "no binding, no bundle")
	code, _, _ = get("", "")
	require.Equal(t, http.StatusUnauthorized, code)
}

// getBundle asks url for a bundle with token, and If-None-Match etag when given.
func getBundle(t *testing.T, url, token, etag string) (int, []byte, http.Header) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}
