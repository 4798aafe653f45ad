// Package duckdbtest reads Driftline's outputs with DuckDB in tests (the npm package
// @duckdb/node-api pinned in bench/duckdb, its engine inside it, on Debian's node): what a
// data team's own tools make of the prediction log, the quarantine and the training sets.
//
// Tests only; it imports objstore and internal/stack.
package duckdbtest
