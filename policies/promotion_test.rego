package driftline.promotion_test

import data.driftline.promotion

good := {
	"model": "demand",
	"version": 2,
	"candidate": {"mae": 1.5},
	"champion": {"version": 1, "mae": 1.6},
	"spec": {
		"evaluation": {"max_mae": 6, "max_regression": 0},
		"approval": {"required": true},
		"canary": {"min_requests": 30, "max_error_rate_delta": 0.02, "max_p99_latency_delta_ms": 25},
	},
	"reports": {"validation": "s3://b/v.json", "drift": "s3://b/d.json", "evaluation": "s3://b/e.json"},
}

first := json.remove(good, ["champion", "reports/drift", "spec/canary"])

test_good_candidate_allowed if {
	promotion.allow with input as good
	promotion.decision.reasons == [] with input as good
}

test_first_deployment_needs_no_champion_drift_or_canary if {
	promotion.allow with input as first
}

test_empty_input_denied if {
	not promotion.allow with input as {}
	promotion.decision.reasons == ["candidate MAE is missing", "evaluation.max_mae is missing from the spec", "the evaluation report is not attached", "the validation report is not attached"] with input as {}
}

test_mae_over_threshold_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/candidate/mae", "value": 7.25}])
	not promotion.allow with input as inp
	"candidate MAE 7.25 exceeds the threshold 6" in promotion.deny with input as inp
}

test_worse_than_champion_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/candidate/mae", "value": 1.7}])
	not promotion.allow with input as inp
	"candidate MAE 1.7 is worse than production v1 (1.6) beyond the allowed margin" in promotion.deny with input as inp
}

test_regression_margin_allows_small_loss if {
	inp := json.patch(good, [
		{"op": "replace", "path": "/candidate/mae", "value": 1.7},
		{"op": "replace", "path": "/spec/evaluation/max_regression", "value": 0.1},
	])
	promotion.allow with input as inp
}

test_missing_reports_denied if {
	inp := json.remove(good, ["reports/validation", "reports/drift"])
	not promotion.allow with input as inp
	"the validation report is not attached" in promotion.deny with input as inp
	"the drift report is not attached" in promotion.deny with input as inp
}

test_canary_without_guardrails_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/spec/canary/max_error_rate_delta", "value": 0}])
	not promotion.allow with input as inp
}

test_approval_required_follows_spec if {
	promotion.approval_required with input as good
	inp := json.patch(good, [{"op": "replace", "path": "/spec/approval/required", "value": false}])
	not promotion.approval_required with input as inp
	promotion.decision.approval_required == false with input as inp
}

test_fairness_holds if {
	inp := object.union(good, {"fairness": {"attribute": "region", "disparate_impact": 0.93, "lowest_group": "east", "highest_group": "west"}})
	promotion.allow with input as inp
}

test_disparate_impact_under_threshold_denied if {
	inp := object.union(good, {"fairness": {"attribute": "region", "disparate_impact": 0.612, "lowest_group": "east", "highest_group": "west"}})
	not promotion.allow with input as inp
	"disparate impact of region is 0.612 (east vs west), under 0.8" in promotion.deny with input as inp
}

test_disparate_impact_threshold_from_spec if {
	inp := object.union(good, {
		"fairness": {"attribute": "region", "disparate_impact": 0.85, "lowest_group": "east", "highest_group": "west"},
		"spec": object.union(good.spec, {"fairness": {"min_disparate_impact": 0.9}}),
	})
	not promotion.allow with input as inp
}

test_quantized_variant_served_within_the_loss_bound if {
	inp := json.patch(good, [
		{"op": "add", "path": "/spec/quantization", "value": {"serve": true, "max_mae_loss": 0.01}},
		{"op": "add", "path": "/quantization", "value": {"mae_loss": 0.004}},
	])
	promotion.decision.serve_quantized with input as inp
	too_lossy := json.patch(inp, [{"op": "replace", "path": "/quantization/mae_loss", "value": 0.03}])
	not promotion.serve_quantized with input as too_lossy
	not_asked := json.patch(inp, [{"op": "replace", "path": "/spec/quantization/serve", "value": false}])
	not promotion.serve_quantized with input as not_asked
	not promotion.serve_quantized with input as good
}
