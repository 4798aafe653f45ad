# Organisation floors: rules per model group that a model's spec may tighten and never loosen.
#
# data.driftline.rbac.organisation: [floor], each floor:
#   models                      models it applies to ("*", a model, "group:<model group>")
#   approval                    "always" | "with_production": a human approves whatever the spec says
#                               (with_production: whenever the model has a production version)
#   distinct_approver           the approver must not be the run's requester
#   break_glass                 false: decisions without the API's attestation are refused whatever the spec says
#   max_regression              ceiling of evaluation.max_regression
#   min_disparate_impact        floor of fairness.min_disparate_impact
#   canary.min_requests, canary.min_labels, canary.min_steps                 floors
#   canary.max_error_rate_delta, canary.max_p99_latency_delta_ms,
#   canary.max_mae_regression, canary.mae_alpha                              ceilings
# input: model, spec (the spec's JSON form), champion (present when the model has a production version)
package driftline.organisation

import data.driftline.authz.model_matches

floors contains f if {
	some f in object.get(data.driftline.rbac, "organisation", [])
	model_matches(f.models, input.model)
}

# A floor's minimum on a spec value: the spec must be at or above it.
at_least := [
	["min_disparate_impact", ["fairness", "min_disparate_impact"]],
	["canary.min_requests", ["canary", "min_requests"]],
	["canary.min_labels", ["canary", "min_labels"]],
]

# A floor's maximum on a spec value: the spec must be at or under it.
at_most := [
	["max_regression", ["evaluation", "max_regression"]],
	["canary.max_error_rate_delta", ["canary", "max_error_rate_delta"]],
	["canary.max_p99_latency_delta_ms", ["canary", "max_p99_latency_delta_ms"]],
	["canary.max_mae_regression", ["canary", "max_mae_regression"]],
	["canary.mae_alpha", ["canary", "mae_alpha"]],
]

floor_value(f, name) := v if {
	parts := split(name, ".")
	v := object.get(f, parts, null)
	v != null
}

violations contains msg if {
	some f in floors
	some [name, path] in at_least
	limit := floor_value(f, name)
	got := object.get(input.spec, path, 0)
	got < limit
	msg := sprintf("%s is %v, under the organisation's floor %v for model %s", [concat(".", path), got, limit, input.model])
}

violations contains msg if {
	some f in floors
	some [name, path] in at_most
	limit := floor_value(f, name)
	got := object.get(input.spec, path, 0)
	got > limit
	msg := sprintf("%s is %v, over the organisation's ceiling %v for model %s", [concat(".", path), got, limit, input.model])
}

steps := count(input.spec.canary.steps) if {
	count(object.get(input.spec.canary, "steps", [])) > 0
} else := 1

violations contains msg if {
	some f in floors
	limit := floor_value(f, "canary.min_steps")
	steps < limit
	msg := sprintf("canary.steps has %v step(s), under the organisation's floor of %v for model %s", [steps, limit, input.model])
}

violations contains msg if {
	some f in floors
	f.approval == "always"
	not input.spec.approval.required
	msg := sprintf("approval.required is off, but the organisation requires an approval for every run of model %s", [input.model])
}

default approval_required := false

approval_required if input.spec.approval.required == true

approval_required if {
	some f in floors
	f.approval == "always"
}

approval_required if {
	some f in floors
	f.approval == "with_production"
	is_number(input.champion.version)
}

default distinct_approver := false

distinct_approver if {
	some f in floors
	f.distinct_approver == true
}

default break_glass := false

break_glass if {
	input.spec.approval.break_glass == true
	not break_glass_refused
}

break_glass_refused if {
	some f in floors
	f.break_glass == false
}

decision := {
	"violations": sort(violations),
	"approval_required": approval_required,
	"distinct_approver": distinct_approver,
	"break_glass": break_glass,
}
