// Package console is Driftline's read-only web UI (`driftline console`): pages for a model
// (versions, deployment pointer, MAE over versions, lineage from data files to deployment), a
// run (steps and timings, the drift report with histograms, the evaluation per segment, the
// canary evidence per step, the policy decision and the approval), the monitoring windows, a
// run's trace (Jaeger) and the Grafana dashboards drawn from their own queries (Prometheus),
// rendered on the server with html/template, charts as inline SVG laid out in Go, no
// JavaScript at all (the Content-Security-Policy forbids it). It reads what the loop and the
// monitor write (the registry and reports in S3; Temporal for runs still going) and writes
// nothing; every page needs a token the API accepts and the RBAC's view permission on its
// model.
package console
