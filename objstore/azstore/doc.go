// Package azstore is an objstore.Bucket on Azure Blob Storage (one container): create-once and
// compare-and-swap by ETag conditions, ranged reads, listings by prefix. Credentials come the
// standard ways of Azure: a connection string (Azurite, or an account key), or the account's
// URL with the default credential chain (environment, workload or managed identity, the
// Azure CLI); none is built in.
//
// It imports objstore and the Azure SDK only.
package azstore
