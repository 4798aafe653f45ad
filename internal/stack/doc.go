// Package stack starts the real services Driftline runs on, each as its own restartable
// process (MinIO, the Temporal dev server or the Temporal server on PostgreSQL, Prometheus,
// Alertmanager, Redis, Jaeger, Driftline's own binaries), for the activity tests, the
// end-to-end test and the fault campaigns. Nothing here is a mock. Tests only.
package stack
