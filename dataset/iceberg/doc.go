// Package iceberg reads Apache Iceberg tables for a run through apache/iceberg-go: a table
// found by its location in Driftline's bucket (the Hadoop layout Spark's file catalogs
// write: metadata/vN.metadata.json and version-hint.text) or through a SQL catalog the
// worker's operator configured, every metadata and manifest file read through the same
// objstore.Bucket as the rest of Driftline; a snapshot chosen by id or by time; the window
// pushed to iceberg-go's planner as a predicate on the event-time column (partition and
// file-statistics pruning); and the data files it keeps pinned as a dataset.Snapshot, with
// their columns matched by Iceberg field id (renamed columns, columns added after a file was
// written) and identity partition values, for the dataset scan to read.
package iceberg
