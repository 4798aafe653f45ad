// Package delta reads Delta Lake tables on an objstore.Bucket without Spark: the transaction
// log (_delta_log: JSON commits and Parquet checkpoints, single- and multi-part) replayed to a
// version chosen by number or by time, the protocol and its reader features checked, the
// schema with column mapping, and the live data files with their partition values and sizes:
// what a run pins of a table.
//
// It imports objstore and parquet-go only.
package delta
