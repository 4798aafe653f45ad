// Package objstoretest holds the contract test every objstore.Bucket must pass.
//
// It is imported by tests only.
package objstoretest
