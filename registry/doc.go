// Package registry keeps immutable model versions with their lineage and the deployment
// pointer that serving follows, both in object storage.
//
// It imports audit, drift, model, objstore, pipeline and spec: never Temporal or HTTP.
package registry
