package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// governed is what the policy step establishes before it asks OPA: the spec whose governed
// fields decide (the model's registered one, never the run's input), whether the run's own
// spec departs from it, and who requested the run (from its origin attestation).
type governed struct {
	spec      spec.Spec
	version   int
	changed   []string // governed fields where the run's spec departs from the registered one
	requester string   // the attested requester; "" when the origin does not verify
	verified  bool
	why       string // why the requester is not verified
}

// governance loads the model's registered spec and verifies the run's origin. A model without
// a registered spec, or a registry that cannot be read, is not decided on the run's word.
func (p *Policy) governance(ctx context.Context, in pipeline.PolicyInput) (governed, error) {
	if p.Registry == nil {
		return governed{}, invalid("policy: the worker has no registry to read the model's registered spec from")
	}
	reg, ver, _, err := p.Registry.CurrentSpec(ctx, in.Model)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return governed{}, invalid("policy: %v", err)
	case err != nil:
		return governed{}, classify("policy", err)
	}
	g := governed{spec: reg, version: ver.Version, changed: spec.GovernanceChanges(&reg, in.Spec)}
	g.requester, g.verified, g.why = p.requester(ctx, in)
	return g, nil
}

// requester verifies the run's origin with the API's attestation keys.
func (p *Policy) requester(ctx context.Context, in pipeline.PolicyInput) (string, bool, string) {
	if in.Origin == "" {
		return "", false, "the run carries no origin attestation (it was not started through the control-plane API)"
	}
	if p.Keys == nil {
		return "", false, "the worker has no attestation keys (--attestation-keys) to verify the run's origin"
	}
	keys, err := p.Keys(ctx)
	if err != nil {
		return "", false, "the attestation keys could not be read: " + err.Error()
	}
	att, err := pipeline.VerifyOrigin(in.Origin, keys, in.Model, in.StartedAt, time.Now())
	if err != nil {
		return "", false, "the run's origin does not verify: " + err.Error()
	}
	return att.Subject, true, ""
}

// judge adds what the registered spec and the origin decide to OPA's decision: a run whose
// governed fields differ from the registered spec is denied (it was started outside the API, or
// the spec changed since), and so is a run whose requester cannot be verified when the
// organisation requires an approver other than the requester.
func (g governed) judge(d policies.Decision) policies.Decision {
	if len(g.changed) > 0 {
		d.Reasons = append(d.Reasons, fmt.Sprintf("the run's spec departs from the registered spec v%d of the model in governed fields (%s): start runs through the control-plane API",
			g.version, strings.Join(g.changed, ", ")))
	}
	if d.DistinctApprover && !g.verified {
		d.Reasons = append(d.Reasons, "the organisation requires an approver other than the run's requester, and the requester is not verified: "+g.why)
	}
	if len(d.Reasons) > 0 {
		d.Allow, d.ServeQuantized = false, false
	}
	return d
}
