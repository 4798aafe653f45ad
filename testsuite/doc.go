// Package testsuite starts the real services Driftline runs on (MinIO and the Temporal dev
// server, both from ./bin, installed by `make tools`) for activity tests and the end-to-end
// test. Nothing here is a mock.
//
// It is used by tests only (and by the end-to-end test in this package).
package testsuite
