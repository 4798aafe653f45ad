package spec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadExample(t *testing.T) {
	s, err := Load("../examples/demand.yaml")
	require.NoError(t, err)
	require.Equal(t, "demand", s.Model)
	require.Equal(t, []string{"price", "promo", "weekday", "temperature", "item_popularity"}, s.Features)
	require.Equal(t, 15*time.Second, s.Canary.Bake.Duration)
	require.Equal(t, []float64{0.1, 0.3, 0.5}, s.Canary.StepShares())
	require.Equal(t, "region", s.Canary.ProtectedAttribute)
	require.Equal(t, 24*time.Hour, s.Approval.Timeout.Duration)
	require.Len(t, s.Hash, 64)
}

func TestParseErrorsNameTheField(t *testing.T) {
	base, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", "target: units_sold", "target: units_sold\ntargett: x", "field targett not found"},
		{"bad version", "driftline.dev/v1", "driftline.dev/v9", "apiVersion"},
		{"target is feature", "target: units_sold", "target: price", "target: \"price\" is also a feature"},
		{"unknown trainer", "name: ridge", "name: magic", "trainer.name"},
		{"bad duration", "bake: 15s", "bake: soon", "not a duration"},
		{"steps must rise", "steps: [0.1, 0.3, 0.5]", "steps: [0.3, 0.1]", "canary.steps[1]"},
		{"unknown mode", "mode: split ", "mode: mirror ", "canary.mode"},
		{"fairness attribute", "protected_attribute: region", "protected_attribute: price", "fairness.protected_attribute"},
		{"bad share", "share: 0.3", "share: 1.5", "canary.share"},
		{"feature not in contract", "features: [price,", "features: [prize,", `features[0]: "prize" is not a contract column`},
		{"feature with wrong role", "{name: competitor_price, type: double, role: other", "{name: competitor_price, type: double, role: boss", `role "boss" is not feature`},
		{"range upside down", "min: -50, max: 60", "min: 60, max: -50", "min 60 is above max -50"},
		{"unknown correction", "correction: bh", "correction: holm", "drift.correction"},
		{"critical is not a feature", "critical_features: []", "critical_features: [region]", "drift.critical_features[0]"},
		{"holdout too big", "holdout_days: 7", "holdout_days: 40", "dataset.holdout_days"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(string(base), c.from, c.to, 1)
			require.NotEqual(t, string(base), src, "replacement did not apply")
			_, err := Parse([]byte(src))
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
