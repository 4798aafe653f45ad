package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/dashboards"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/serving"
)

// ExportedMetrics are the metric names the workers register (pipeline, monitor, serving,
// object store, ingest), whether or not they have been observed yet.
func exportedMetrics(t *testing.T) map[string]bool {
	reg := prometheus.NewRegistry()
	activities.NewMetrics(reg)
	activities.NewMonitorMetrics(reg)
	serving.NewMetrics(reg)
	objstore.NewStoreMetrics(reg)
	ingest.NewMetrics(reg)
	ch := make(chan *prometheus.Desc, 256)
	go func() { reg.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for d := range ch {
		out[fq.FindStringSubmatch(d.String())[1]] = true
	}
	require.Greater(t, len(out), 40)
	return out
}

// The dashboards as code: every one parses with unique uids and panel ids, every panel has a
// query on the provisioned Prometheus datasource, and every metric a query names is one the
// workers export or a recording rule of deploy/prometheus/rules.yml (the real Prometheus of
// the end-to-end test runs each query: testsuite).
func TestDashboardsNameOnlyExportedMetrics(t *testing.T) {
	qs, err := dashboards.Load("grafana/dashboards")
	require.NoError(t, err)
	var ds struct {
		Datasources []struct{ UID, Type string } `yaml:"datasources"`
	}
	raw, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &ds))
	require.Len(t, ds.Datasources, 1)
	names := exportedMetrics(t)
	rules, err := os.ReadFile("prometheus/rules.yml")
	require.NoError(t, err)
	for _, m := range regexp.MustCompile(`(?m)^\s+- record: (\S+)$`).FindAllStringSubmatch(string(rules), -1) {
		names[m[1]] = true
	}
	titles := map[string]bool{}
	for _, q := range qs {
		titles[q.Dashboard] = true
		require.Equal(t, ds.Datasources[0].UID, q.Datasource, "%s / %s", q.Dashboard, q.Panel)
		ms := q.Metrics()
		require.NotEmpty(t, ms, "%s / %s: %s reads no Driftline metric", q.Dashboard, q.Panel, q.Expr)
		for _, m := range ms {
			require.True(t, names[m], "%s / %s: %s is not a metric the workers export (%s)", q.Dashboard, q.Panel, m, q.Expr)
		}
	}
	require.Len(t, titles, 3, "the loop, serving, and monitoring with the business KPIs")
	compose, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(compose), "./deploy/grafana/dashboards:/var/lib/grafana/dashboards/driftline:ro"))
	prov, err := os.ReadFile("grafana/provisioning/dashboards/driftline.yml")
	require.NoError(t, err)
	require.Contains(t, string(prov), "path: /var/lib/grafana/dashboards/driftline", "the provider reads where compose mounts them")
}
