package policies

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/stretchr/testify/require"
)

// TestRego runs every test_ rule of the embedded policies with OPA's tester and requires
// full coverage of the policy modules.
func TestRego(t *testing.T) {
	src, err := Sources()
	require.NoError(t, err)
	modules := map[string]*ast.Module{}
	for name, body := range src {
		m, err := ast.ParseModuleWithOpts(name, body, ast.ParserOptions{RegoVersion: ast.RegoV1})
		require.NoError(t, err, name)
		modules[name] = m
	}
	cov := cover.New()
	ch, err := tester.NewRunner().SetCoverageQueryTracer(cov).SetModules(modules).RunTests(context.Background(), nil)
	require.NoError(t, err)
	n := 0
	for r := range ch {
		n++
		require.NoError(t, r.Error, r.Name)
		require.False(t, r.Fail, "rego test failed: %s.%s", r.Package, r.Name)
	}
	require.GreaterOrEqual(t, n, 9, "the rego tests ran")
	report := cov.Report(modules)
	for name, f := range report.Files {
		if len(name) > 10 && name[len(name)-10:] == "_test.rego" {
			continue
		}
		require.Empty(t, f.NotCovered, "%s has lines no test reaches (coverage %.1f%%)", name, f.Coverage)
	}
}

func TestEngineDecision(t *testing.T) {
	e, err := NewEngine(context.Background())
	require.NoError(t, err)
	require.Len(t, e.Revision(), 16)
	d, err := e.Promotion(context.Background(), map[string]any{})
	require.NoError(t, err)
	require.False(t, d.Allow, "empty input is denied")
	require.NotEmpty(t, d.Reasons)
	d, err = e.Promotion(context.Background(), map[string]any{
		"candidate": map[string]any{"mae": 2.0},
		"spec":      map[string]any{"evaluation": map[string]any{"max_mae": 3}, "approval": map[string]any{"required": true}},
		"reports":   map[string]any{"validation": "v", "evaluation": "e"},
	})
	require.NoError(t, err)
	require.True(t, d.Allow, "%v", d.Reasons)
	require.True(t, d.ApprovalRequired)
	require.Equal(t, e.Revision(), d.Revision)
}
