package policies

import (
	"context"
	"os"
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
	e, err := NewEngine(context.Background(), RBAC{})
	require.NoError(t, err)
	require.Len(t, e.Revision(), 16)
	d, err := e.Promotion(context.Background(), PromotionInput{})
	require.NoError(t, err)
	require.False(t, d.Allow, "empty input is denied")
	require.NotEmpty(t, d.Reasons)
	in := PromotionInput{Candidate: Candidate{MAE: 2}, Reports: map[string]string{"validation": "v", "evaluation": "e"}}
	in.Spec.Evaluation.MaxMAE, in.Spec.Approval.Required = 3, true
	d, err = e.Promotion(context.Background(), in)
	require.NoError(t, err)
	require.True(t, d.Allow, "%v", d.Reasons)
	require.True(t, d.ApprovalRequired)
	require.Equal(t, e.Revision(), d.Revision)
}

func TestEngineAuthorizeWithRBACFile(t *testing.T) {
	rbac, err := LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	e, err := NewEngine(context.Background(), rbac)
	require.NoError(t, err)
	ctx := context.Background()
	d, err := e.Authorize(ctx, Subject{ID: "alice"}, "approve", "demand")
	require.NoError(t, err)
	require.True(t, d.Allow)
	d, err = e.Authorize(ctx, Subject{ID: "dave"}, "approve", "demand")
	require.NoError(t, err)
	require.False(t, d.Allow)
	require.Equal(t, []string{"user:dave may not approve on model demand"}, d.Reasons)
	d, err = e.Authorize(ctx, Subject{ID: "erin", Groups: []string{"ml-platform"}}, "rollback", "fraud")
	require.NoError(t, err)
	require.True(t, d.Allow)
	d, err = e.AuthorizeDataset(ctx, Subject{ID: "dave"}, "demand", true)
	require.NoError(t, err)
	require.False(t, d.Allow, "PII needs read_pii")
	d, err = e.AuthorizeDataset(ctx, Subject{ID: "dave"}, "demand", false)
	require.NoError(t, err)
	require.True(t, d.Allow)
	who, err := e.Approvers(ctx, "demand")
	require.NoError(t, err)
	require.Equal(t, []string{"group:ml-platform", "user:alice", "user:bob"}, who)
}

func TestLoadRBACRejectsBadBindings(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/rbac.yaml"
	require.NoError(t, os.WriteFile(bad, []byte("roles: {viewer: [view]}\nbindings:\n  - {subject: alice, role: viewer, models: [demand]}\n"), 0o600))
	_, err := LoadRBAC(bad)
	require.ErrorContains(t, err, "bindings[0].subject")
	require.NoError(t, os.WriteFile(bad, []byte("roles: {viewer: [view]}\nbindings:\n  - {subject: user:alice, role: boss, models: [demand]}\n"), 0o600))
	_, err = LoadRBAC(bad)
	require.ErrorContains(t, err, `role "boss" is not a defined role`)
}
