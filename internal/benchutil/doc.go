// Package benchutil holds what the benchmark programs share, and the production model the
// fan-out benchmark and the fan-out fault test set up before what they measure.
//
// It is imported by the bench programs and tests only.
package benchutil
