// Package config reads Driftline's settings from flags and the environment, with validated
// defaults. Temporal client options come from the standard TEMPORAL_* environment.
//
// It imports objstore/s3store and the Temporal client only.
package config
