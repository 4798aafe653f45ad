// Package policies embeds Driftline's Rego policies (governance as code) and evaluates them
// with OPA, compiled once at start.
//
// It imports no Driftline package and nothing of Temporal, HTTP or storage: callers pass
// inputs in and get decisions back.
package policies
