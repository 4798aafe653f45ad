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
	err := Execute(ctx, []string{"rollback", "--model", "demand"})
	require.ErrorContains(t, err, `--reason is required, it goes into the audit trail: driftline rollback --model demand --reason "..."`)
	err = Execute(ctx, []string{"promote", "--model", "demand", "--reason", "x"})
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
		err := Execute(ctx, []string{"rollback", "--model", "demand", "--reason", "bad canary", "--api", srv.URL})
		require.ErrorContains(t, err, fmt.Sprintf("HTTP %d: the API's words (", c))
		require.ErrorContains(t, err, want, c)
	}
	t.Setenv("DRIFTLINE_TOKEN", "")
	require.ErrorContains(t, Execute(ctx, []string{"rollback", "--model", "demand", "--reason", "x", "--api", srv.URL}),
		"a bearer token is required: set DRIFTLINE_TOKEN (or --token)")
}
