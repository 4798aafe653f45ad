// Package gcsstore is an objstore.Bucket on Google Cloud Storage: create-once and
// compare-and-swap by object generation, ranged reads, listings by prefix. Credentials come
// the standard way (application default credentials); an emulator (fake-gcs-server) is used
// with Config.Endpoint, without credentials.
//
// It imports objstore and Google's storage client only.
package gcsstore
