package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// An error of the CLI says what to do next: the missing flag with the command that works,
// and for a refusal of the API what the status means (token, permission, a stale read).
func TestErrorsSayWhatToDoNext(t *testing.T) {
	ctx := context.Background()
	t.Setenv("DRIFTLINE_TOKEN", "a-token")
	err := cmdRollback(ctx, []string{"--model", "demand"})
	require.ErrorContains(t, err, `--reason is required, it goes into the audit trail: driftline rollback --model demand --reason "..."`)
	err = cmdPromote(ctx, []string{"--model", "demand", "--reason", "x"})
	require.ErrorContains(t, err, "--version and --reason are required (driftline models --model demand lists the versions)")

	code := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error": "the API's words"}`))
	}))
	defer srv.Close()
	for c, want := range map[int]string{
		http.StatusUnauthorized: "is DRIFTLINE_TOKEN set and unexpired? development: export DRIFTLINE_TOKEN=$(driftline token --sub <you>)",
		http.StatusForbidden:    "your identity lacks the permission: the RBAC file",
		http.StatusConflict:     "the state changed under you: read it again",
	} {
		code = c
		err := cmdRollback(ctx, []string{"--model", "demand", "--reason", "bad canary", "--api", srv.URL})
		require.ErrorContains(t, err, fmt.Sprintf("HTTP %d: the API's words (", c))
		require.ErrorContains(t, err, want, c)
	}
	t.Setenv("DRIFTLINE_TOKEN", "")
	require.ErrorContains(t, cmdRollback(ctx, []string{"--model", "demand", "--reason", "x", "--api", srv.URL}),
		"a bearer token is required: set DRIFTLINE_TOKEN (or --token)")
}

// There is no default model: a command that acts on one says --model is required.
func TestModelIsRequired(t *testing.T) {
	t.Setenv("DRIFTLINE_MODEL", "")
	ctx := context.Background()
	for name, run := range map[string]func(context.Context, []string) error{
		"status": cmdStatus, "rollback": cmdRollback, "promote": cmdPromote, "models": cmdModels, "run": cmdRun,
	} {
		err := run(ctx, nil)
		require.ErrorContains(t, err, "--model is required", name)
	}
	t.Setenv("DRIFTLINE_MODEL", "demand")
	require.ErrorContains(t, cmdRollback(ctx, nil), "--reason is required", "DRIFTLINE_MODEL names the model")
}

// A features subcommand takes its own flags only: materialize's --chunk is not get's.
func TestFeatureSubcommandsTakeTheirOwnFlags(t *testing.T) {
	ctx := context.Background()
	err := cmdFeatures(ctx, []string{"get", "--chunk", "1h", "--definitions", "../../examples/features.yaml", "--spec", "../../examples/demand.yaml"})
	require.ErrorContains(t, err, "flag provided but not defined: -chunk")
	err = cmdFeatures(ctx, []string{"retrieve", "--definitions", "../../examples/features.yaml", "--spec", "../../examples/demand.yaml"})
	require.ErrorContains(t, err, "--entities and --out are required")
	require.ErrorContains(t, cmdFeatures(ctx, []string{"frobnicate"}), "usage: driftline features")
}
