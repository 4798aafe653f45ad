package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// stdout runs f and returns what it printed.
func stdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	ferr := f()
	os.Stdout = saved
	require.NoError(t, w.Close())
	return string(<-done), ferr
}

// With a token, `driftline models` and `features get --online` read through the API (view
// on the model), not the bucket or the store: the CLI is given no S3 or store address that
// works, and answers with what the API holds; a caller without view is refused.
func TestCLIReadsGoThroughTheAPIWithAToken(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMem()
	reg := registry.New(store)
	m := &model.Model{Family: "linear", Objective: hparams.SquaredError, Features: []string{"x"}, Inputs: model.NumericInputs([]string{"x"}),
		Linear: &model.Linear{Coef: []float64{1}, Means: []float64{0}, Scales: []float64{1}}}
	art, err := m.Marshal()
	require.NoError(t, err)
	_, err = reg.Register(ctx, registry.Version{Model: "demand", Lineage: registry.Lineage{RunID: "r1", Trainer: "linear"}}, art, drift.Profile{}, nil)
	require.NoError(t, err)
	_, err = reg.UpdateDeployment(ctx, "demand", registry.Change{Action: registry.TransPromote, Key: "init"}, func(d *registry.Deployment) (bool, error) { return d.Promote(1) })
	require.NoError(t, err)
	raw, err := os.ReadFile("../../examples/demand.yaml")
	require.NoError(t, err)
	sp, err := spec.Parse(raw)
	require.NoError(t, err)
	_, _, err = reg.ApplySpec(ctx, sp, raw, "", "grace", "initial", nil)
	require.NoError(t, err)
	defs, err := os.ReadFile("../../examples/features.yaml")
	require.NoError(t, err)

	rbac, err := policies.LoadRBAC("../../examples/rbac.yaml")
	require.NoError(t, err)
	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	online, err := features.OpenStore(ctx, "bolt:"+filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, err)
	defer online.Close()
	secret := []byte("cli-secret-cli-secret-cli-secret-cli")
	srv := &api.Server{Verifier: api.DevHS256{Secret: secret}, Engine: engine, Audit: audit.Log{Store: store}, Registry: reg, Online: online}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	token := func(sub string) string {
		tok, err := api.MintDev(secret, sub, nil, time.Hour)
		require.NoError(t, err)
		return tok
	}
	// dave applies the repository through the API; the online store has a row of each view.
	dave := []string{"--api", hs.URL, "--token", token("dave"), "--s3-endpoint", "http://127.0.0.1:1"}
	_, err = stdout(t, func() error {
		return Execute(ctx, append([]string{"features", "apply", "--definitions", "../../examples/features.yaml", "--spec", "../../examples/demand.yaml",
			"--reason", "history"}, dave...))
	})
	require.NoError(t, err)
	_, repo, _, found, err := features.Current(ctx, store, "retail")
	require.NoError(t, err)
	require.True(t, found)
	require.NotEmpty(t, defs)
	for _, v := range repo.Views {
		vals := make([]float64, len(v.Features))
		for i := range vals {
			vals[i] = 40 + float64(i)
		}
		require.NoError(t, online.Put(ctx, v.Name, []features.FeatureRow{{Key: "1|1", Event: time.Now().Add(-time.Minute).UnixMicro(), Created: time.Now().UnixMicro(), Values: vals}}))
	}

	alice := []string{"--api", hs.URL, "--token", token("alice"), "--s3-endpoint", "http://127.0.0.1:1"}
	out, err := stdout(t, func() error {
		return Execute(ctx, append([]string{"models", "--model", "demand", "--output", "json"}, alice...))
	})
	require.NoError(t, err)
	var models api.ModelResponse
	require.NoError(t, json.Unmarshal([]byte(out), &models), out)
	require.Equal(t, 1, models.Deployment.Production)
	require.Len(t, models.Versions, 1)
	require.Equal(t, "r1", models.Versions[0].Lineage.RunID)

	out, err = stdout(t, func() error {
		return Execute(ctx, append([]string{"features", "get", "--online", "--key", "1|1", "--spec", "../../examples/demand.yaml",
			"--definitions", "../../examples/features.yaml", "--output", "json"}, alice...))
	})
	require.NoError(t, err)
	var vec struct {
		Source string `json:"source"`
		Values []struct {
			Value *float64 `json:"value"`
		} `json:"values"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &vec), out)
	require.Equal(t, "online, through the API", vec.Source)
	require.NotEmpty(t, vec.Values)
	require.NotNil(t, vec.Values[0].Value)
	require.GreaterOrEqual(t, *vec.Values[0].Value, 40.0)

	victor := []string{"--api", hs.URL, "--token", token("victor"), "--s3-endpoint", "http://127.0.0.1:1"}
	_, err = stdout(t, func() error { return Execute(ctx, append([]string{"models", "--model", "demand"}, victor...)) })
	require.ErrorContains(t, err, "403")
}
