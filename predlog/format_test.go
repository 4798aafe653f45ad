package predlog

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// recordBeforeTypedInputs is the log's record as parts were written before the typed input
// columns: the inputs a JSON object.
type recordBeforeTypedInputs struct {
	RequestID  string  `parquet:"request_id"`
	TimeUnixMs int64   `parquet:"time_unix_ms"`
	Model      string  `parquet:"model"`
	Version    int32   `parquet:"version"`
	Route      string  `parquet:"route"`
	RoutingKey string  `parquet:"routing_key"`
	LatencyUs  int64   `parquet:"latency_us"`
	Error      string  `parquet:"error"`
	Prediction float64 `parquet:"prediction"`
	Inputs     string  `parquet:"inputs"`
	Attributes string  `parquet:"attributes"`
	Fallback   string  `parquet:"fallback"`
	Features   string  `parquet:"features"`
	TraceID    string  `parquet:"trace_id"`
}

// Parts of both formats are committed (testdata/, each written with its format's schema; with
// DRIFTLINE_WRITE_LOG_PARTS=1 this test writes them again): the reader of today reads both,
// and a later format must keep reading the current one.
func TestLogPartsOfEveryFormatAreRead(t *testing.T) {
	current := []Record{
		{RequestID: "r1", TimeUnixMs: 1764583200000, Model: "demand", Version: 2, Route: "production", Prediction: 4.5,
			InputNames: []string{"price", "promo", "temperature"}, InputValues: []float64{9.5, 1, math.NaN()}, Attributes: `{"region":"north"}`},
		{RequestID: "r2", TimeUnixMs: 1764583200001, Model: "demand", Version: 2, Route: "canary", Prediction: 3,
			InputNames: []string{"price", "promo", "temperature", "extra"}, InputValues: []float64{8, 0, 6.5, 1}},
	}
	older := []recordBeforeTypedInputs{
		{RequestID: "o1", TimeUnixMs: 1764583100000, Model: "demand", Version: 1, Route: "production", Prediction: 4,
			Inputs: `{"price":9.5,"promo":1,"temperature":null}`, Attributes: `{"region":"south"}`},
		{RequestID: "o2", TimeUnixMs: 1764583100001, Model: "demand", Version: 1, Route: "production", Inputs: `{not json`},
	}
	if os.Getenv("DRIFTLINE_WRITE_LOG_PARTS") != "" {
		for name, rows := range map[string]func() ([]byte, error){
			"testdata/part-typed-inputs.parquet": func() ([]byte, error) { return dataset.EncodeParquet(current) },
			"testdata/part-json-inputs.parquet":  func() ([]byte, error) { return dataset.EncodeParquet(older) },
		} {
			data, err := rows()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(name, data, 0o644))
		}
	}
	ctx := context.Background()
	b := objstore.NewMem()
	for _, name := range []string{"part-typed-inputs.parquet", "part-json-inputs.parquet"} {
		data, err := os.ReadFile("testdata/" + name)
		require.NoError(t, err)
		_, err = b.Put(ctx, name, data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	typed, err := ReadPart[Record](ctx, b, "part-typed-inputs.parquet")
	require.NoError(t, err)
	require.Len(t, typed, 2)
	in, ok := typed[0].InputMap()
	require.True(t, ok)
	require.Equal(t, map[string]float64{"price": 9.5, "promo": 1}, in, "NaN: not sent")
	in, ok = typed[1].InputMap()
	require.True(t, ok)
	require.Equal(t, map[string]float64{"price": 8, "promo": 0, "temperature": 6.5, "extra": 1}, in)
	require.Equal(t, `{"region":"north"}`, typed[0].Attributes)

	old, err := ReadPart[Record](ctx, b, "part-json-inputs.parquet")
	require.NoError(t, err)
	require.Len(t, old, 2)
	require.Empty(t, old[0].InputNames, "an older part has no typed columns")
	in, ok = old[0].InputMap()
	require.True(t, ok)
	require.Equal(t, map[string]float64{"price": 9.5, "promo": 1}, in, "null: not sent")
	_, ok = old[1].InputMap()
	require.False(t, ok, "an older part's inputs that are not JSON are named unreadable, not guessed")
}
