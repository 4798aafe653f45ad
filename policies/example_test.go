package policies_test

import (
	"context"
	"fmt"

	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/spec"
)

// The promotion policy decides on a candidate's evidence and the model's registered spec: here
// a candidate under the demo spec's MAE threshold and better than production on the same
// holdout; the spec requires an approver.
func ExampleEngine_Promotion() {
	e, err := policies.NewEngine(context.Background(), policies.RBAC{})
	if err != nil {
		panic(err)
	}
	sp, err := spec.Load("../examples/demand.yaml") // the model's registered spec
	if err != nil {
		panic(err)
	}
	in := policies.PromotionInput{
		Model: "demand", Version: 2,
		Candidate: policies.Candidate{MAE: 1.66},
		Champion:  &policies.Champion{Version: 1, MAE: 4.14},
		Spec:      sp,
		Reports: map[string]string{"validation": "s3://b/reports/demand/r2/validation.json", "drift": "s3://b/reports/demand/r2/drift.json",
			"evaluation": "s3://b/reports/demand/r2/evaluation.json"},
		Governance: policies.GovernanceInput{SpecVersion: 1, Requester: "dave", RequesterVerified: true},
	}
	d, err := e.Promotion(context.Background(), in)
	if err != nil {
		panic(err)
	}
	fmt.Println("allow:", d.Allow, "approval required:", d.ApprovalRequired)
	// Output: allow: true approval required: true
}
