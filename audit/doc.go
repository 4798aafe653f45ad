// Package audit writes append-only audit records to audit/YYYY/MM/DD/<time>-<id>.json.
//
// It imports only objstore: no Temporal, HTTP or domain package.
package audit
