// Package worker builds and runs the pipeline worker: it registers the workflows and the
// activities (each concern once, with its dependencies) on the driftline-pipeline task queue
// and serves Prometheus metrics.
//
// It is the one place that links workflows and activities together.
package worker
