// Package helm holds the tests of Driftline's Helm chart (deploy/helm/driftline): lint, render
// over the values files of driftline/ci, strict decoding of every rendered object against the
// Kubernetes API types, the golden default render and the values the schema refuses. It is its
// own module so the Kubernetes libraries stay out of Driftline's. No cluster is needed.
package helm
