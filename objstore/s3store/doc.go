// Package s3store is the objstore.Bucket on S3 (AWS S3, MinIO) with the AWS SDK v2. It is
// its own package so that only the binaries that talk to S3 link the SDK.
//
// It imports objstore and the AWS SDK only.
package s3store
