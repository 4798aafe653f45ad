// Package contract holds a dataset's data-quality contract (columns, types, roles, ranges,
// allowed values, unique key, bad-row budget) and the typed reasons a row can be rejected
// for. It is a leaf: it imports nothing of Driftline, so specs, workflows and clients can
// carry a contract without linking Parquet or S3.
package contract
