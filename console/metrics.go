package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Metrics answers range queries (Prometheus in production and in the end-to-end test).
type Metrics interface {
	QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]MetricSeries, error)
}

// MetricSeries is one series of a range query's answer.
type MetricSeries struct {
	Labels map[string]string
	Points []MetricPoint
}

// MetricPoint is one sample.
type MetricPoint struct {
	T time.Time
	V float64
}

// Prometheus asks Prometheus's HTTP API (`/api/v1/query_range`).
type Prometheus struct {
	URL    string
	Client *http.Client
}

// QueryRange implements Metrics. The query goes as a GET with its parameters in a fixed
// order, so the same page asks the same URL.
func (p Prometheus) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]MetricSeries, error) {
	q := url.Values{"query": {expr}, "start": {promTime(start)}, "end": {promTime(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	resp, err := ask(ctx, p.Client, p.URL, "/api/v1/query_range?"+q.Encode(), "prometheus")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := ParsePrometheus(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: HTTP %d: %w", p.URL, resp.StatusCode, err)
	}
	return out, nil
}

// ask asks a backend's HTTP API (base URL, path and query); a nil client is one with a 15 s
// timeout. The error names the backend.
func ask(ctx context.Context, c *http.Client, base, path, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, base, err)
	}
	return resp, nil
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// ParsePrometheus reads a range query's answer (a matrix); an answer with status "error" is
// the error Prometheus gives (e.g. a parse error naming the position in the query).
func ParsePrometheus(r io.Reader) ([]MetricSeries, error) {
	var out struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, fmt.Errorf("not an answer of Prometheus's API: %w", err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("%s: %s", out.ErrorType, out.Error)
	}
	if out.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q, want matrix", out.Data.ResultType)
	}
	series := make([]MetricSeries, 0, len(out.Data.Result))
	for i, res := range out.Data.Result {
		s := MetricSeries{Labels: res.Metric, Points: make([]MetricPoint, 0, len(res.Values))}
		for j, v := range res.Values {
			ts, ok1 := v[0].(float64)
			str, ok2 := v[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("series %d, sample %d: want [unix seconds, \"value\"], got %v", i, j, v)
			}
			val, err := parseSample(str)
			if err != nil {
				return nil, fmt.Errorf("series %d, sample %d: %w", i, j, err)
			}
			sec, frac := math.Modf(ts)
			s.Points = append(s.Points, MetricPoint{T: time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), V: val})
		}
		series = append(series, s)
	}
	return series, nil
}

func parseSample(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}
