// Package objstore is the small object-storage interface Driftline needs, with an S3
// implementation (AWS S3, MinIO) and an in-memory one for unit tests. Both pass the same
// contract test (objstore/contract.go).
//
// It imports nothing of Driftline. The S3 implementation is package objstore/s3store, so
// only binaries that talk to S3 link the AWS SDK.
package objstore
