// Package dataset reads tabular data from Parquet objects, checks it against a model's
// contract, pins snapshots of dataset windows and generates the demo dataset.
//
// It imports contract and objstore only: never Temporal, HTTP, spec or the trainers.
package dataset
