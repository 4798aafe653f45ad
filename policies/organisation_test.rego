package driftline.organisation_test

import data.driftline.organisation
import data.driftline.promotion

rbac := {
	"model_groups": {"retail": ["demand", "returns"]},
	"organisation": [
		{
			"models": ["group:retail"],
			"approval": "with_production",
			"distinct_approver": true,
			"break_glass": false,
			"max_regression": 0.05,
			"min_disparate_impact": 0.8,
			"canary": {
				"min_requests": 30, "min_labels": 1000, "min_steps": 2,
				"max_error_rate_delta": 0.02, "max_p99_latency_delta_ms": 50,
				"max_mae_regression": 0.1, "mae_alpha": 0.05,
			},
		},
		{"models": ["fraud"], "approval": "always"},
	],
}

spec := {
	"evaluation": {"max_mae": 6, "max_regression": 0},
	"fairness": {"min_disparate_impact": 0.8},
	"approval": {"required": false, "break_glass": true},
	"canary": {
		"steps": [0.1, 0.5], "min_requests": 30, "min_labels": 2000,
		"max_error_rate_delta": 0.02, "max_p99_latency_delta_ms": 25,
		"max_mae_regression": 0.05, "mae_alpha": 0.05,
	},
}

test_a_spec_within_the_floors_has_no_violations if {
	organisation.violations == set() with input as {"model": "demand", "spec": spec} with data.driftline.rbac as rbac
}

test_every_loosened_field_is_named if {
	loose := json.patch(spec, [
		{"op": "replace", "path": "/evaluation/max_regression", "value": 0.5},
		{"op": "replace", "path": "/fairness/min_disparate_impact", "value": 0.5},
		{"op": "replace", "path": "/canary/min_requests", "value": 1},
		{"op": "replace", "path": "/canary/min_labels", "value": 10},
		{"op": "replace", "path": "/canary/max_error_rate_delta", "value": 1},
		{"op": "replace", "path": "/canary/max_p99_latency_delta_ms", "value": 1000},
		{"op": "replace", "path": "/canary/max_mae_regression", "value": 10},
		{"op": "replace", "path": "/canary/mae_alpha", "value": 0.5},
		{"op": "remove", "path": "/canary/steps"},
	])
	v := organisation.violations with input as {"model": "demand", "spec": loose} with data.driftline.rbac as rbac
	count(v) == 9
	"evaluation.max_regression is 0.5, over the organisation's ceiling 0.05 for model demand" in v
	"fairness.min_disparate_impact is 0.5, under the organisation's floor 0.8 for model demand" in v
	"canary.steps has 1 step(s), under the organisation's floor of 2 for model demand" in v
}

test_floors_apply_only_to_their_models if {
	loose := json.patch(spec, [{"op": "replace", "path": "/canary/min_requests", "value": 1}])
	organisation.violations == set() with input as {"model": "churn", "spec": loose} with data.driftline.rbac as rbac
	organisation.violations == set() with input as {"model": "demand", "spec": loose} with data.driftline.rbac as {}
	not organisation.approval_required with input as {"model": "churn", "spec": spec, "champion": {"version": 1}} with data.driftline.rbac as rbac
}

test_approval_with_production if {
	not organisation.approval_required with input as {"model": "demand", "spec": spec} with data.driftline.rbac as rbac
	organisation.approval_required with input as {"model": "demand", "spec": spec, "champion": {"version": 1}} with data.driftline.rbac as rbac
}

test_approval_always_is_a_violation_when_off_and_required_anyway if {
	inp := {"model": "fraud", "spec": spec}
	organisation.approval_required with input as inp with data.driftline.rbac as rbac
	"approval.required is off, but the organisation requires an approval for every run of model fraud" in organisation.violations with input as inp with data.driftline.rbac as rbac
}

test_spec_alone_can_require_approval if {
	on := json.patch(spec, [{"op": "replace", "path": "/approval/required", "value": true}])
	organisation.approval_required with input as {"model": "churn", "spec": on} with data.driftline.rbac as rbac
}

test_distinct_approver_and_break_glass if {
	d := organisation.decision with input as {"model": "demand", "spec": spec} with data.driftline.rbac as rbac
	d.distinct_approver == true
	d.break_glass == false # the spec asks for it, the floor refuses it
	e := organisation.decision with input as {"model": "churn", "spec": spec} with data.driftline.rbac as rbac
	e.distinct_approver == false
	e.break_glass == true # no floor: the spec decides
}

test_empty_input if {
	d := organisation.decision with input as {} with data.driftline.rbac as {}
	d == {"violations": [], "approval_required": false, "distinct_approver": false, "break_glass": false}
}

test_promotion_applies_the_floors if {
	inp := {
		"model": "demand", "version": 2, "candidate": {"mae": 1.5}, "champion": {"version": 1, "mae": 1.6},
		"spec": json.patch(spec, [{"op": "replace", "path": "/canary/min_labels", "value": 10}]),
		"reports": {"validation": "v", "drift": "d", "evaluation": "e"},
	}
	d := promotion.decision with input as inp with data.driftline.rbac as rbac
	d.allow == false
	d.reasons == ["canary.min_labels is 10, under the organisation's floor 1000 for model demand"]
	d.approval_required == true
	d.distinct_approver == true
	d.break_glass == false
}
