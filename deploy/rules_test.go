package deploy

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tool finds a Debian package's binary; make test installs them (make tools).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is missing: make tools installs Debian's prometheus and prometheus-alertmanager", name)
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// The alerting rules parse and behave as their unit tests say (pending, firing, per model
// thresholds, burn rates), with promtool.
func TestPrometheusRules(t *testing.T) {
	require.Contains(t, run(t, "promtool", "check", "rules", "prometheus/rules.yml"), "SUCCESS: 19 rules found")
	run(t, "promtool", "test", "rules", "prometheus/rules_test.yml")
	run(t, "promtool", "check", "config", "--syntax-only", "prometheus.yml")
	require.Contains(t, run(t, "promtool", "check", "config", "prometheus/local.yml"), "SUCCESS: 19 rules found") // the local stack's
}

// Alertmanager's configuration is valid and routes pages to PagerDuty and the channel,
// tickets to the channel only.
func TestAlertmanagerRoutes(t *testing.T) {
	run(t, "amtool", "check-config", "alertmanager/alertmanager.yml")
	run(t, "amtool", "config", "routes", "test", "--config.file=alertmanager/alertmanager.yml", "--verify.receivers=pagerduty-ml,slack-ml",
		"severity=page", "alertname=ModelDegradation", "model=demand")
	run(t, "amtool", "config", "routes", "test", "--config.file=alertmanager/alertmanager.yml", "--verify.receivers=slack-ml",
		"severity=ticket", "alertname=RunsFailing", "model=demand")
}
