package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Enricher fills in a feature the request did not carry from an external source (the demo's
// weather service gives the temperature of the request's region). Calls go through a timeout
// and a circuit breaker; when the source fails, the feature gets the last value seen for the
// same key, or Default, and the answer says so.
type Enricher struct {
	Feature string
	// URL is a template; {name} is replaced by the request attribute name, e.g.
	// http://127.0.0.1:8095/v1/weather?region={region}. The source answers {"<feature>": x}.
	URL     string
	Timeout time.Duration
	Default float64

	client  *http.Client
	breaker *gobreaker.CircuitBreaker[float64]
	mu      sync.Mutex
	last    map[string]float64
	metrics *Metrics
}

// errNotTheSource marks a failure caused by the request (a key the source does not know), not
// by the source.
var errNotTheSource = errors.New("the source does not know the request's key")

// init prepares the HTTP client and the breaker: it opens after 5 consecutive failures and
// tries again after 10 s (one probe at a time).
func (e *Enricher) init(m *Metrics) {
	if e.Timeout <= 0 {
		e.Timeout = 100 * time.Millisecond
	}
	// The source's calls are client spans of the request's trace.
	e.client = &http.Client{Timeout: e.Timeout, Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "enrich " + e.Feature }))}
	e.last = map[string]float64{}
	e.metrics = m
	e.breaker = gobreaker.NewCircuitBreaker[float64](gobreaker.Settings{
		Name: "enrich-" + e.Feature, MaxRequests: 1, Timeout: 10 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		// The source answering that it does not know a key (4xx) is the caller's fault, not
		// the source's: it neither opens the breaker for everyone nor counts as a success.
		IsExcluded: func(err error) bool { return errors.Is(err, errNotTheSource) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			m.BreakerState.WithLabelValues(e.Feature).Set(map[gobreaker.State]float64{gobreaker.StateClosed: 0, gobreaker.StateHalfOpen: 1, gobreaker.StateOpen: 2}[to])
		},
	})
	m.BreakerState.WithLabelValues(e.Feature).Set(0)
}

// target fills the URL template from the request attributes; the cache key is the URL.
func (e *Enricher) target(attrs map[string]string) (string, error) {
	u := e.URL
	for {
		i := strings.Index(u, "{")
		if i < 0 {
			return u, nil
		}
		j := strings.Index(u[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("enrichment URL %q: unclosed {", e.URL)
		}
		name := u[i+1 : i+j]
		v, ok := attrs[name]
		if !ok {
			return "", fmt.Errorf("attributes.%s is needed to look up %s", name, e.Feature)
		}
		u = u[:i] + url.QueryEscape(v) + u[i+j+1:]
	}
}

func (e *Enricher) fetch(ctx context.Context, target string) (float64, error) {
	return e.breaker.Execute(func() (float64, error) {
		ctx, cancel := context.WithTimeout(ctx, e.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return 0, err
		}
		resp, err := e.client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
			return 0, fmt.Errorf("HTTP %d: %w", resp.StatusCode, errNotTheSource)
		case resp.StatusCode != http.StatusOK:
			return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		var body map[string]float64
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return 0, err
		}
		v, ok := body[e.Feature]
		if !ok {
			return 0, fmt.Errorf("answer has no %q", e.Feature)
		}
		return v, nil
	})
}

// Fill sets the feature in each row that lacks it; the returned note (empty when the source
// answered) says what fallback was used and why.
func (e *Enricher) Fill(ctx context.Context, model string, rows []map[string]float64, attrs map[string]string) (string, error) {
	missing := false
	for _, r := range rows {
		if _, ok := r[e.Feature]; !ok {
			missing = true
		}
	}
	if !missing {
		return "", nil
	}
	target, err := e.target(attrs)
	if err != nil {
		return "", err
	}
	v, ferr := e.fetch(ctx, target)
	note := ""
	if ferr == nil {
		e.mu.Lock()
		e.last[target] = v
		e.mu.Unlock()
		e.metrics.Enrichments.WithLabelValues(model, e.Feature, "ok").Inc()
	} else {
		reason := "error"
		if errors.Is(ferr, gobreaker.ErrOpenState) || errors.Is(ferr, gobreaker.ErrTooManyRequests) {
			reason = "circuit_open"
		} else if isTimeout(ferr) {
			reason = "timeout"
		}
		e.mu.Lock()
		last, ok := e.last[target]
		e.mu.Unlock()
		if ok {
			v = last
			note = fmt.Sprintf("%s: source failed (%s); used the last known value %g", e.Feature, reason, v)
			e.metrics.Enrichments.WithLabelValues(model, e.Feature, "fallback_last_known").Inc()
		} else {
			v = e.Default
			note = fmt.Sprintf("%s: source failed (%s); used the default %g", e.Feature, reason, v)
			e.metrics.Enrichments.WithLabelValues(model, e.Feature, "fallback_default").Inc()
		}
	}
	for _, r := range rows {
		if _, ok := r[e.Feature]; !ok {
			r[e.Feature] = v
		}
	}
	return note, nil
}

func newEnrichmentMetrics(reg prometheus.Registerer, m *Metrics) {
	m.Enrichments = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "enrichments_total", Help: "Feature enrichments by result: ok, fallback_last_known, fallback_default."}, []string{"model", "feature", "result"})
	m.BreakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: Subsystem,
		Name: "enrichment_breaker_state", Help: "Circuit breaker of an enrichment source: 0 closed, 1 half-open, 2 open."}, []string{"feature"})
	reg.MustRegister(m.Enrichments, m.BreakerState)
}

// isTimeout reports whether a source call failed by its deadline (the context's or the HTTP
// client's), from the error's type, not its text.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
