// Package tabletest reads a table's snapshot the way a run does, for the table readers' tests
// (dataset/delta, dataset/iceberg): every row through the dataset scan, as text.
package tabletest
