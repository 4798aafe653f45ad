// Package spec holds the model spec: the versioned YAML file that says what a model is trained
// on, how, and what it must prove before it reaches production.
//
// It imports only the leaf packages contract, drift and model/hparams, so workflows can
// validate a spec without linking Parquet, S3 or the trainers.
package spec
