// Package deploy holds what users deploy next to the workers, checked by its tests against
// the code: the Prometheus configuration and rules, Alertmanager's routes, docker-compose's
// wiring and the Grafana dashboards. Its only Go is Dashboards, the dashboards embedded for
// the console, which draws the same panels; it must import nothing of Driftline's (its tests
// may).
package deploy

import "embed"

// Dashboards are the Grafana dashboards as shipped (grafana/dashboards/*.json), the files
// Grafana provisions.
//
//go:embed grafana/dashboards/*.json
var Dashboards embed.FS
