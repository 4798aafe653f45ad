// Package codec encrypts Temporal payloads with AES-256-GCM (the Temporal SDK's PayloadCodec),
// so the specs, evidence and approval reasons a run carries are not readable in Temporal's
// persistence or by whoever can read its history, and serves the codec endpoint that lets the
// Temporal UI decode them for operators allowed to.
//
// It imports only the Temporal SDK and its API types.
package codec
