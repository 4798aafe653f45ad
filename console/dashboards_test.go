package console

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// promStandIn answers Prometheus's range queries the way Prometheus does (a matrix on the
// step grid of start..end, or a bad_data error) and records what it was asked: served
// requests by model (demand and secret) and route, a canary share, prediction log drops
// (no model label), and a query Prometheus refuses.
type promStandIn struct {
	mu    sync.Mutex
	asked []string
}

func (p *promStandIn) serve(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/api/v1/query_range", r.URL.Path)
		q := r.URL.Query()
		expr := q.Get("query")
		p.mu.Lock()
		p.asked = append(p.asked, expr)
		p.mu.Unlock()
		start, _ := strconv.ParseFloat(q.Get("start"), 64)
		end, _ := strconv.ParseFloat(q.Get("end"), 64)
		step, _ := strconv.ParseFloat(q.Get("step"), 64)
		if strings.Contains(expr, "model_load_errors") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:9: parse error: unexpected identifier"}`)
			return
		}
		type series struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		}
		grid := func(labels map[string]string, v func(i int) float64) series {
			s := series{Metric: labels}
			for i, ts := 0, start; ts <= end; i, ts = i+1, ts+step {
				s.Values = append(s.Values, [2]any{ts, strconv.FormatFloat(v(i), 'f', -1, 64)})
			}
			return s
		}
		var out []series
		switch {
		case strings.Contains(expr, `route=~"canary|shadow"`):
			out = append(out, grid(map[string]string{"model": "demand"}, func(int) float64 { return 0.25 }))
		case strings.Contains(expr, `driftline_serving_requests_total{model=~`) && strings.Contains(expr, `code="200"`):
			out = append(out, grid(map[string]string{"model": "demand", "version": "2", "route": "production"}, func(i int) float64 { return 40 + float64(i%7) }),
				grid(map[string]string{"model": "demand", "version": "3", "route": "canary"}, func(int) float64 { return 5 }),
				grid(map[string]string{"model": "secret", "version": "9", "route": "production"}, func(int) float64 { return 77 }))
		case strings.Contains(expr, "histogram_quantile(0.99"):
			out = append(out, grid(map[string]string{"model": "demand", "route": "production"}, func(int) float64 { return 0.00025 }),
				grid(map[string]string{"model": "demand", "route": "canary"}, func(i int) float64 {
					if i > 100 {
						return math.NaN() // no canary answers at the end of the range
					}
					return 0.0004
				}))
		case strings.Contains(expr, "prediction_log_dropped"):
			out = append(out, grid(map[string]string{}, func(int) float64 { return 0.5 }))
		}
		require.NoError(t, json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": out}}))
	}))
}

// The serving dashboard as alice (a viewer of demand only) sees it: every query the
// dashboard has is asked, filled with the models she may view and no other; the answer's
// series of secret are dropped, the series of every model together (log drops) are withheld
// from her, units are Grafana's (percentunit drawn as %), and a query Prometheus refuses is
// shown in its panel with Prometheus's reason.
func TestDashboardPageDrawsThePanelsWithinTheRBAC(t *testing.T) {
	f := seed(t)
	var prom promStandIn
	ps := prom.serve(t)
	defer ps.Close()
	f.srv.Metrics = Prometheus{URL: ps.URL}
	h := f.srv.Handler()

	w := get(t, h, "alice", "/dashboards/driftline-serving?range=1h&end=2026-12-02T05:00:00Z")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	boards, err := shipped()
	require.NoError(t, err)
	var queries int
	for _, b := range boards {
		if b.UID == "driftline-serving" {
			for _, p := range b.Panels {
				queries += len(p.Targets)
				require.Contains(t, body, fmt.Sprintf(`id="panel-%d"`, p.ID), p.Title)
			}
		}
	}
	require.Len(t, prom.asked, queries, "one range query per target")
	for _, q := range prom.asked {
		require.NotContains(t, q, "$model")
		require.NotContains(t, q, "secret", "never asked for a model alice may not view")
	}
	require.Contains(t, strings.Join(prom.asked, "\n"), `model=~"demand"`)

	panel := func(body string, id int) string {
		i := strings.Index(body, fmt.Sprintf(`id="panel-%d"`, id))
		require.GreaterOrEqual(t, i, 0)
		j := strings.Index(body[i:], "</figure>")
		return body[i : i+j]
	}
	answered := panel(body, 1)
	require.Contains(t, answered, "Answered requests by version and route (req/s)")
	require.Contains(t, answered, "demand v2 production")
	require.Contains(t, answered, "demand v3 canary")
	require.NotContains(t, answered, "secret", "a series of another model is dropped from the answer")
	require.Equal(t, 2, strings.Count(answered, "<polyline"))
	require.Equal(t, 0, strings.Count(answered, "<circle"), "121 points: no dots")
	require.Contains(t, panel(body, 4), `25</span>`, "0.25 of percentunit is 25 %")
	require.Contains(t, panel(body, 4), "(%)")
	latency := panel(body, 3)
	require.Contains(t, latency, "Latency p50 and p99 by route (ms)", "seconds under 1 are drawn as milliseconds")
	require.Contains(t, latency, `p99 demand production <span class="last">0.25</span>`)
	require.Contains(t, latency, `p99 demand canary <span class="last">-</span>`, "no value at the end: a dash, not NaN")
	require.Contains(t, panel(body, 8), "shown only to viewers of every model")
	require.NotContains(t, panel(body, 8), "<polyline")
	require.Contains(t, panel(body, 11), "bad_data: 1:9: parse error: unexpected identifier")
	require.Contains(t, panel(body, 9), "no data in this range")
	loop := get(t, h, "alice", "/dashboards/driftline-loop").Body.String()
	require.Contains(t, panel(loop, 2), "Step duration p90 (s)", "no values: the unit stays seconds")
	require.Contains(t, body, "2026-12-02 04:00:00 .. 2026-12-02 05:00:00 UTC, a point every 30s")

	// root views every model: both models asked for, secret's series and the log drops shown.
	prom.asked = nil
	w = get(t, h, "root", "/dashboards/driftline-serving?range=15m")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, strings.Join(prom.asked, "\n"), `model=~"demand|secret"`)
	require.Contains(t, panel(w.Body.String(), 1), "secret v9 production")
	require.Equal(t, 1, strings.Count(panel(w.Body.String(), 8), "<polyline"))

	// One model chosen; the refusals name what was wrong.
	prom.asked = nil
	require.Equal(t, http.StatusOK, get(t, h, "root", "/dashboards/driftline-serving?model=demand").Code)
	require.Contains(t, strings.Join(prom.asked, "\n"), `model=~"demand"`)
	require.NotContains(t, strings.Join(prom.asked, "\n"), `secret`)
	for path, want := range map[string]struct {
		code int
		msg  string
	}{
		"/dashboards/driftline-serving?model=secret":                                       {http.StatusForbidden, "alice may not view model secret"},
		"/dashboards/driftline-serving?model=..%2Fx":                                       {http.StatusBadRequest, `model &#34;../x&#34;: not a model name`},
		"/dashboards/driftline-serving?range=2h":                                           {http.StatusBadRequest, "range &#34;2h&#34;: want one of 1m, 5m, 15m, 1h, 6h, 24h, 7d"},
		"/dashboards/driftline-serving?end=yesterday":                                      {http.StatusBadRequest, `end &#34;yesterday&#34;: want an RFC 3339 time`},
		"/dashboards/driftline-serving?from=2026-12-02T05:00:00Z&end=2026-12-02T04:00:00Z": {http.StatusBadRequest, "want a window of at most 7d that ends after it starts"},
		"/dashboards/driftline-serving?from=noon":                                          {http.StatusBadRequest, `from &#34;noon&#34;: want an RFC 3339 time`},
		"/dashboards/driftline-serving?from=2026-12-02T04:59:00Z&end=2026-12-02T05:00:00Z": {http.StatusOK, "2026-12-02 04:59:00 .. 2026-12-02 05:00:00 UTC, a point every 1s"},
		"/dashboards/grafana-home":                                                         {http.StatusNotFound, `no dashboard &#34;grafana-home&#34;`},
		"/dashboards/driftline-loop?range=7d&end=2026-12-02T00:00:00Z":                     {http.StatusOK, "a point every 1h24m0s"},
	} {
		w := get(t, h, "alice", path)
		require.Equal(t, want.code, w.Code, path)
		require.Contains(t, w.Body.String(), want.msg, path)
	}
	require.Equal(t, http.StatusForbidden, get(t, h, "mallory", "/dashboards/driftline-serving").Code, "a viewer of no model")

	list := get(t, h, "alice", "/dashboards").Body.String()
	for _, b := range boards {
		require.Contains(t, list, `href="/dashboards/`+b.UID+`"`)
	}
	require.Len(t, boards, 3)

	// Without Prometheus the pages say how to give it one.
	f.srv.Metrics = nil
	w = get(t, f.srv.Handler(), "alice", "/dashboards/driftline-serving")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), "driftline console --prometheus URL")
}

func TestParsePrometheus(t *testing.T) {
	got, err := ParsePrometheus(strings.NewReader(`{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"model":"demand"},"values":[[1764651600.5,"1.25"],[1764651630,"NaN"],[1764651660,"+Inf"]]}]}}`))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, map[string]string{"model": "demand"}, got[0].Labels)
	require.Equal(t, time.Date(2025, 12, 2, 5, 0, 0, 500e6, time.UTC), got[0].Points[0].T)
	require.Equal(t, 1.25, got[0].Points[0].V)
	require.True(t, math.IsNaN(got[0].Points[1].V))
	require.True(t, math.IsInf(got[0].Points[2].V, 1))

	for in, want := range map[string]string{
		`{"status":"error","errorType":"bad_data","error":"unknown function"}`:                  "bad_data: unknown function",
		`{"status":"success","data":{"resultType":"vector","result":[]}}`:                       `result type "vector", want matrix`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"x"]]}]}}`:   "series 0, sample 0: strconv.ParseFloat",
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[["1","2"]]}]}}`: "series 0, sample 0: want [unix seconds",
		`<html>502 Bad Gateway</html>`: "not an answer of Prometheus's API",
	} {
		_, err := ParsePrometheus(strings.NewReader(in))
		require.ErrorContains(t, err, want, in)
	}
}
