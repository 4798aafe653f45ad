// Package pipeline is the leaf package of the types the continuous-training workflows share
// with their activities and clients: the run input and status, outcomes, stages, routes,
// activity names, inputs and results, and the error types the workflow branches on.
//
// It must not import Temporal, Parquet, S3, the trainers or any front end: workflows import
// only this package and the Temporal SDK, so a workflow change never relinks the trainers,
// and domain packages may fill its evidence types without depending on Temporal. Its only
// Driftline imports are spec (the model spec a run carries) and, through it, the leaf
// packages contract, drift and model/hparams.
package pipeline
