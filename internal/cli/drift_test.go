package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
)

func TestPrintReportTable(t *testing.T) {
	rep := drift.Report{Config: drift.DefaultConfig(), Drifted: true, Why: "1 of 2 features drifted", Features: []drift.FeatureResult{
		{Name: "price", Kind: drift.Numeric, Test: "ks-asymp", Statistic: 0.31, PValue: 1e-40, PAdjusted: 2e-40, PSI: 0.8, JS: 0.3, WassersteinStd: 0.9, Drifted: true, Why: "KS 0.310 >= 0.1"},
		{Name: "promo", Kind: drift.Categorical, Test: "chi-squared", Statistic: 1.2, PValue: 0.27, PAdjusted: 0.27, PSI: 0.01, Why: "no drift"},
	}}
	var out strings.Builder
	PrintReport(&out, rep)
	s := out.String()
	lines := strings.Split(s, "\n")
	require.Contains(t, lines[0], "FEATURE")
	require.Contains(t, lines[1], "price")
	require.Contains(t, lines[1], "YES")
	require.Contains(t, lines[1], "0.900")
	require.Contains(t, lines[2], "promo")
	require.Contains(t, lines[2], " - ")
	require.Contains(t, s, "decision: drifted=true, 1 of 2 features drifted")
	require.Contains(t, s, "adjusted p (bh) < 0.05")
}
