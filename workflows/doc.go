// Package workflows holds Driftline's deterministic workflow code: the continuous-training
// loop and its canary child workflow. It imports only package pipeline (the shared names and
// types), contract (the date layout) and the Temporal SDK, so it never links the trainers,
// Parquet or S3; activities are called by the names in pipeline.
package workflows
