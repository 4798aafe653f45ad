package driftline.authz_test

import data.driftline.authz

rbac := {
	"roles": {
		"viewer": ["view"],
		"data-scientist": ["view", "start_run", "change_schedule"],
		"approver": ["view", "approve", "rollback"],
		"admin": ["view", "start_run", "change_schedule", "read_pii", "approve", "rollback", "promote", "admin"],
	},
	"bindings": [
		{"subject": "user:alice", "role": "approver", "models": ["demand"]},
		{"subject": "user:dave", "role": "data-scientist", "models": ["group:retail"]},
		{"subject": "group:ml-platform", "role": "admin", "models": ["*"]},
		{"subject": "user:vera", "role": "viewer", "models": ["demand"]},
	],
	"model_groups": {"retail": ["demand", "returns"]},
}

req(id, groups, action, model) := {"subject": {"id": id, "groups": groups}, "action": action, "model": model}

test_approver_may_approve_their_model if {
	authz.allow with input as req("alice", [], "approve", "demand") with data.driftline.rbac as rbac
}

test_approver_may_not_approve_other_models if {
	not authz.allow with input as req("alice", [], "approve", "returns") with data.driftline.rbac as rbac
}

test_data_scientist_through_model_group if {
	authz.allow with input as req("dave", [], "start_run", "returns") with data.driftline.rbac as rbac
	not authz.allow with input as req("dave", [], "approve", "returns") with data.driftline.rbac as rbac
	not authz.allow with input as req("dave", [], "start_run", "fraud") with data.driftline.rbac as rbac
}

test_group_admin_everywhere if {
	authz.allow with input as req("erin", ["ml-platform"], "rollback", "fraud") with data.driftline.rbac as rbac
}

test_viewer_only_views if {
	authz.allow with input as req("vera", [], "view", "demand") with data.driftline.rbac as rbac
	not authz.allow with input as req("vera", [], "change_schedule", "demand") with data.driftline.rbac as rbac
	not authz.allow with input as req("vera", [], "rollback", "demand") with data.driftline.rbac as rbac
}

test_pii_needs_read_pii if {
	inp := object.union(req("vera", [], "read_dataset", "demand"), {"dataset": {"pii": false}})
	authz.allow with input as inp with data.driftline.rbac as rbac
	pii := object.union(req("vera", [], "read_dataset", "demand"), {"dataset": {"pii": true}})
	not authz.allow with input as pii with data.driftline.rbac as rbac
	admin := object.union(req("erin", ["ml-platform"], "read_dataset", "demand"), {"dataset": {"pii": true}})
	authz.allow with input as admin with data.driftline.rbac as rbac
}

test_unknown_identity_denied_with_reason if {
	not authz.allow with input as req("mallory", ["nobody"], "approve", "demand") with data.driftline.rbac as rbac
	authz.decision.reasons == ["group:nobody, user:mallory may not approve on model demand"] with input as req("mallory", ["nobody"], "approve", "demand") with data.driftline.rbac as rbac
	authz.decision.reasons == [] with input as req("alice", [], "approve", "demand") with data.driftline.rbac as rbac
}

test_empty_input_denied if {
	not authz.allow with input as {} with data.driftline.rbac as rbac
}

test_approvers_of_a_model if {
	authz.approvers == {"user:alice", "group:ml-platform"} with input as {"model": "demand"} with data.driftline.rbac as rbac
	authz.approvers == {"group:ml-platform"} with input as {"model": "returns"} with data.driftline.rbac as rbac
}
