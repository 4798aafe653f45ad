# Authorization: which identity may do what on which model (RBAC as data).
#
# data.driftline.rbac:
#   roles:        role -> actions (view, start_run, change_schedule, change_monitor, change_features, read_pii, approve, rollback, promote, admin)
#   bindings:     [{subject: "user:<id>" | "group:<name>", role, models: [<model> | "group:<model group>" | "*"]}]
#   model_groups: name -> [model]
# input:
#   subject: {id, groups: [...]}
#   action, model
#   dataset: {pii: bool}   for action read_dataset
package driftline.authz

default allow := false

# The subjects (user:<id> or group:<name>) that an identity answers to.
subjects contains sprintf("user:%s", [input.subject.id]) if input.subject.id != ""

subjects contains sprintf("group:%s", [g]) if some g in input.subject.groups

model_matches(models, model) if "*" in models

model_matches(models, model) if model in models

model_matches(models, model) if {
	some m in models
	startswith(m, "group:")
	model in data.driftline.rbac.model_groups[substring(m, 6, -1)]
}

# granted holds the actions the identity may take on the input's model.
granted contains action if {
	some b in data.driftline.rbac.bindings
	b.subject in subjects
	model_matches(b.models, input.model)
	some action in data.driftline.rbac.roles[b.role]
}

allow if {
	input.action != "read_dataset"
	input.action in granted
}

# Reading a dataset needs view; a dataset with PII columns needs read_pii too.
allow if {
	input.action == "read_dataset"
	"view" in granted
	not input.dataset.pii
}

allow if {
	input.action == "read_dataset"
	"read_pii" in granted
}

# approvers lists the subjects whose bindings let them approve the model (used by the loop to
# check an approver without calling OPA from workflow code).
approvers contains b.subject if {
	some b in data.driftline.rbac.bindings
	model_matches(b.models, input.model)
	"approve" in data.driftline.rbac.roles[b.role]
}

decision := {
	"allow": allow,
	"reasons": reasons,
}

reasons := [] if allow

reasons := [sprintf("%v may not %v on model %v", [concat(", ", sort(subjects)), input.action, input.model])] if not allow
