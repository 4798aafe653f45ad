// Package buildinfo tells which code revision this binary was built from.
//
// It imports nothing of Driftline.
package buildinfo
