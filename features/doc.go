// Package features is Driftline's feature store (issue 15): the point-in-time join that
// builds training sets (AsOf). See docs/features.md.
package features
