// Package benchutil holds what the benchmark programs share.
//
// It is imported by the bench programs only.
package benchutil
