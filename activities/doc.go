// Package activities holds the Temporal activities of the continuous-training loop. Each
// concern is a struct holding its dependencies (Data, Training, Registry, Policy, Canary),
// registered once by the worker; workflows call them by the names in package pipeline. An
// activity is a thin adapter: load from the store, call a domain package (dataset, training,
// evaluate, canary, registry, policies), store the result, and classify errors into the
// pipeline's non-retryable types. Its inputs and results are small structs of object keys and
// summary numbers, never datasets or models.
//
// It must not import workflows, serving, starter or any front end.
package activities
