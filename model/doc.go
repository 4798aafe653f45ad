// Package model holds trainers, the artifact format and predictors with explanations.
//
// It imports only model/hparams: no Temporal, HTTP, object storage or Parquet. Formats live in
// *_io.go-style files (artifact.go, xgboost.go); families implement Predictor.
package model
