// Package testsuite holds the end-to-end test, the fault campaigns and the ingest kill
// campaign, run on the real services package internal/stack starts.
package testsuite
