// Package serving is the serving worker: it follows each model's deployment pointer, loads
// the production and canary versions from the registry, routes the canary share by a stable
// hash of the routing key and answers predictions over HTTP.
//
// It must not import Temporal, workflows or activities: it follows the registry in object
// storage, and shares the route and canary-mode constants with the pipeline through package
// pipeline.
package serving
