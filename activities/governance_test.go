package activities

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// The policy step decides on the model's registered spec, never on the run's: a run whose
// spec loosens a governed field (approval off, a lax threshold, a one-step canary), as a
// Temporal client could start it, is denied; so is a run whose requester is not attested by
// the API when the organisation requires another approver. A run started through the API
// is allowed and names its requester.
func TestPolicyDecidesOnTheRegisteredSpecAndTheAttestedRequester(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMem()
	reg := registry.New(store)
	raw, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	registered, err := spec.Parse(raw)
	require.NoError(t, err)
	_, _, err = reg.ApplySpec(ctx, registered, raw, "", "grace", "initial", nil)
	require.NoError(t, err)
	rbac, err := policies.LoadRBAC("../examples/rbac.yaml")
	require.NoError(t, err)
	engine, err := policies.NewEngine(ctx, rbac)
	require.NoError(t, err)
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	te.RegisterActivity(&Policy{Store: store, Engine: engine, Audit: audit.Log{Store: store}, Registry: reg, Keys: originKeys})
	started := time.Now()
	check := func(sp spec.Spec, origin string) pipeline.PolicyResult {
		t.Helper()
		v, err := te.ExecuteActivity(pl.Check, pipeline.PolicyInput{Model: "demand", RunID: "r", Version: 2, CandidateMAE: 1.5, ChampionVersion: 1,
			ChampionMAE: 1.6, Spec: sp, Reports: map[string]string{"validation": "v", "drift": "d", "evaluation": "e"}, Origin: origin, StartedAt: started})
		require.NoError(t, err)
		var pr pipeline.PolicyResult
		require.NoError(t, v.Get(&pr))
		return pr
	}
	byAPI := origin(pipeline.KindRun, "demand", "dave")

	pr := check(registered, byAPI)
	require.True(t, pr.Allow, pr.Reasons)
	require.True(t, pr.Governed)
	require.True(t, pr.ApprovalRequired)
	require.True(t, pr.DistinctApprover)
	require.Equal(t, "dave", pr.Requester)
	require.Equal(t, 1, pr.SpecVersion)

	loose := registered
	loose.Approval.Required = false
	loose.Approval.BreakGlass = true
	loose.Evaluation.MaxMAE = 1000
	loose.Canary.Steps, loose.Canary.MinLabels = nil, 1
	pr = check(loose, byAPI)
	require.False(t, pr.Allow)
	require.True(t, pr.ApprovalRequired, "the registered spec (and the floor) still require an approver")
	require.False(t, pr.BreakGlass)
	require.Len(t, pr.Reasons, 1)
	require.Contains(t, pr.Reasons[0], "the run's spec departs from the registered spec v1 of the model in governed fields "+
		"(approval.break_glass, approval.required, canary.min_labels, canary.steps, evaluation.max_mae)")

	pr = check(registered, "")
	require.False(t, pr.Allow)
	require.Contains(t, strings.Join(pr.Reasons, ";"), "the requester is not verified: the run carries no origin attestation")
	started = started.Add(time.Hour) // another run reusing the origin an hour later
	pr = check(registered, byAPI)
	require.False(t, pr.Allow)
	require.Contains(t, strings.Join(pr.Reasons, ";"), "it belongs to another run")
}
