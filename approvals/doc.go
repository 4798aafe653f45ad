// Package approvals is the authenticated approvals endpoint: it verifies a bearer token (JWT),
// authorizes the identity with the RBAC policy, and turns the request into the run's
// approve/reject Update. Refused requests, which never reach Temporal history, are audited.
//
// It must not import activities, the domain packages that read data or train models, or the
// worker; it reaches runs through starter (the Temporal client).
package approvals
