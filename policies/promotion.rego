# Promotion policy: may a registered candidate go to production, and does it need a human?
#
# input:
#   model, version                       the candidate
#   candidate.mae                        holdout MAE of the candidate
#   champion.version, champion.mae       the production model on the same holdout (absent on a first deployment)
#   spec.evaluation.max_mae              absolute threshold
#   spec.evaluation.max_regression       allowed relative loss against the champion
#   spec.approval.required               whether a human must approve
#   spec.canary                          guardrails of the live rollout
#   reports.validation / .drift / .evaluation   URIs of the evidence
#   fairness.disparate_impact, .attribute       the candidate's disparate impact (when the data has a protected attribute)
#   spec.fairness.min_disparate_impact          the lowest acceptable ratio
#   quantization.mae_loss                relative holdout MAE increase of the int8 variant
#   spec.quantization.serve, .max_mae_loss      whether to serve it, and the largest loss that allows it
#   organisation floors (organisation.rego) apply on top: their violations deny, and they can
#   require an approval, a distinct approver, or refuse break-glass whatever the spec says
package driftline.promotion

import data.driftline.organisation

default allow := false

default approval_required := false

default serve_quantized := false

has_champion if is_number(input.champion.mae)

candidate_measured if is_number(input.candidate.mae)

threshold_set if is_number(input.spec.evaluation.max_mae)

deny contains "candidate MAE is missing" if not candidate_measured

deny contains "evaluation.max_mae is missing from the spec" if not threshold_set

deny contains msg if {
	input.candidate.mae > input.spec.evaluation.max_mae
	msg := sprintf("candidate MAE %v exceeds the threshold %v", [round3(input.candidate.mae), input.spec.evaluation.max_mae])
}

deny contains msg if {
	has_champion
	limit := input.champion.mae * (1 + object.get(input.spec.evaluation, "max_regression", 0))
	input.candidate.mae > limit
	msg := sprintf("candidate MAE %v is worse than production v%v (%v) beyond the allowed margin", [round3(input.candidate.mae), input.champion.version, round3(input.champion.mae)])
}

deny contains msg if {
	some report in ["validation", "evaluation"]
	not input.reports[report]
	msg := sprintf("the %s report is not attached", [report])
}

deny contains "the drift report is not attached" if {
	has_champion
	not input.reports.drift
}

deny contains msg if {
	input.fairness.disparate_impact < object.get(input.spec, ["fairness", "min_disparate_impact"], 0.8)
	msg := sprintf("disparate impact of %v is %v (%v vs %v), under %v", [input.fairness.attribute, round3(input.fairness.disparate_impact), input.fairness.lowest_group, input.fairness.highest_group, object.get(input.spec, ["fairness", "min_disparate_impact"], 0.8)])
}

# A live rollout against a champion must have guardrails.
deny contains "the canary has no guardrails (min_requests, max_error_rate_delta, max_p99_latency_delta_ms)" if {
	has_champion
	not guardrails_ok
}

guardrails_ok if {
	input.spec.canary.min_requests > 0
	input.spec.canary.max_error_rate_delta > 0
	input.spec.canary.max_p99_latency_delta_ms > 0
}

allow if count(deny) == 0

approval_required if organisation.approval_required

deny contains msg if some msg in organisation.violations

# The int8 variant answers in serving only when the spec asks for it and its accuracy loss on
# the holdout is within the spec's bound.
serve_quantized if {
	input.spec.quantization.serve == true
	is_number(input.quantization.mae_loss)
	input.quantization.mae_loss <= input.spec.quantization.max_mae_loss
}

round3(x) := round(x * 1000) / 1000

decision := {
	"allow": allow,
	"approval_required": approval_required,
	"serve_quantized": serve_quantized,
	"distinct_approver": organisation.distinct_approver,
	"break_glass": organisation.break_glass,
	"reasons": sort(deny),
}
