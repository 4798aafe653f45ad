package dashboards

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestLegend(t *testing.T) {
	labels := map[string]string{"model": "demand", "version": "3", "route": "canary"}
	require.Equal(t, "demand v3 canary", Legend("{{model}} v{{version}} {{route}}", labels))
	require.Equal(t, "p99 demand", Legend("p99 {{ model }} {{code}}", labels), "a label the series lacks is empty")
	require.Equal(t, `{model="demand", route="canary", version="3"}`, Legend("", labels))
	require.Equal(t, "{}", Legend(" ", nil))
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	ok := `{"uid":"a","title":"A","time":{"from":"now-6h"},"panels":[{"id":1,"type":"timeseries","title":"P","fieldConfig":{"defaults":{"unit":"s"}},
		"targets":[{"refId":"A","expr":"up{model=~\"$model\"}","legendFormat":"{{model}}","datasource":{"uid":"prometheus"}}]}]}`
	ds, err := Parse(fstest.MapFS{"a.json": {Data: []byte(ok)}})
	require.NoError(t, err)
	require.Equal(t, []Dashboard{{UID: "a", Title: "A", From: "now-6h", Panels: []Panel{{ID: 1, Type: "timeseries", Title: "P", Unit: "s",
		Targets: []Target{{RefID: "A", Expr: `up{model=~"$model"}`, Legend: "{{model}}", Datasource: "prometheus"}}}}}}, ds)
	require.True(t, UsesModel(ds[0].Panels[0].Targets[0].Expr))
	require.Equal(t, `up{model=~"demand|fraud"}`, WithModels(ds[0].Panels[0].Targets[0].Expr, "demand|fraud"))

	for name, c := range map[string]struct{ files fstest.MapFS }{
		"b.json: uid \"a\" missing or used by a.json too":     {fstest.MapFS{"a.json": {Data: []byte(ok)}, "b.json": {Data: []byte(ok)}}},
		"a.json: panel id 1 twice":                            {fstest.MapFS{"a.json": {Data: []byte(`{"uid":"a","panels":[{"id":1,"targets":[{"expr":"up"}]},{"id":1,"targets":[{"expr":"up"}]}]}`)}}},
		"a.json: panel \"P\" has no query":                    {fstest.MapFS{"a.json": {Data: []byte(`{"uid":"a","panels":[{"id":1,"title":"P"}]}`)}}},
		"a.json: panel \"P\" target B has no expr":            {fstest.MapFS{"a.json": {Data: []byte(`{"uid":"a","panels":[{"id":1,"title":"P","targets":[{"refId":"B","expr":" "}]}]}`)}}},
		"a.json: invalid character '}' looking for beginning": {fstest.MapFS{"a.json": {Data: []byte(`{"uid":}`)}}},
		"no dashboards (*.json)":                              {fstest.MapFS{"README.md": {Data: []byte("x")}}},
	} {
		_, err := Parse(c.files)
		require.ErrorContains(t, err, name)
	}
}
