// Package edge is Driftline's runtime for devices: it loads a signed edge bundle (the int8
// variant of a tree or linear model, its feature order and contract ranges, and a manifest
// signed with Ed25519) and predicts one row or a batch without allocating. It depends on the
// standard library only and uses no cgo, so it builds for linux/amd64, arm64, arm, riscv64 and
// wasip1; its predictions are bit for bit the server's int8 variant's (the server computes
// with this package's arithmetic), on every architecture (tested under qemu-user-static).
//
// The bundle's bytes are documented in docs/edge.md; Encode writes one and Load verifies and
// reads it, refusing a bad signature, a truncated or altered file, a counter older than the
// one installed (no rollback by replaying an old bundle) and a feature order that differs.
package edge
