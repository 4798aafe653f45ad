// Package externaltrainer is an example external trainer: a worker on its own task queue
// that implements Driftline's train contract (activity driftline.train.v1, docs/models.md)
// with the Temporal Go SDK. It fits ridge regression on the run's pinned Parquet files,
// leaving out the holdout, and writes a Driftline artifact where it was asked to. A team
// would put its own training code here, in any language with a Temporal SDK.
//
// It imports pipeline, contract, dataset, model and objstore: what an external trainer needs,
// and no more of Driftline.
package externaltrainer
