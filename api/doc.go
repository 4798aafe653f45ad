// Package api is Driftline's control-plane HTTP API (`driftline api`): the one way to change
// its state. It starts and cancels runs, decides approvals (signing each decision as an
// attestation the workflow verifies), promotes, rolls back, sets aliases and manages
// schedules. Every call is authenticated with a bearer token from an OpenID Connect identity
// provider (keys from its JWKS; HS256 only in --dev), authorised by the RBAC policy in OPA,
// and audited, allowed or refused.
//
// It imports audit, pipeline, policies, registry, spec and starter: never activities, the
// trainers or the data plane.
package api
