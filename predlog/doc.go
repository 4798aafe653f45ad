// Package predlog is the prediction log: serving appends every answered request to
// predictions/<model>/dt=YYYY-MM-DD/part-*.parquet off the request path, and the canary
// reads it back to compare the candidate with production on live traffic.
//
// It imports dataset, drift and objstore: never serving, Temporal or the trainers.
package predlog
