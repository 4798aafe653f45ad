// Package starter is the client side of Driftline: start and follow runs, read their status,
// approve or reject candidates, manage schedules and set up a namespace. The CLI uses it.
//
// It imports pipeline, spec and workflows (for the typed search attribute keys) only: never
// activities or a domain package that reads data.
package starter
