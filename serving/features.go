package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/predlog"
)

// FeatureFiller fills the features of a feature service a request does not carry from the
// online store (docs/features.md): the request names its entity by attributes (the entity's
// keys, e.g. store_id and item_id), and one read returns the service's vector. The read goes
// through a timeout and a circuit breaker, as enrichment does; a value the store does not have,
// or has past its view's online_expiry, is left missing (NaN: the model's missing-value path),
// never invented: it gets the feature's Default when one is configured (e.g. its training
// mean), else the request fails naming the feature and why. The answer's note (in the
// prediction log) says which values came from the store, how old they were, and which were
// missing and why.
type FeatureFiller struct {
	Store   features.Online
	Repo    features.Repo
	Service string
	// Keys are the request attributes that make the entity key, in the entity's key order.
	Keys    []string
	Timeout time.Duration
	Now     func() time.Time
	// Defaults are used, per feature, for a value the store cannot give.
	Defaults map[string]float64

	names   []string // the service's features as the model names them (after view:)
	breaker *gobreaker.CircuitBreaker[features.Vector]
	metrics *Metrics
}

func (f *FeatureFiller) init(m *Metrics) error {
	svc, ok := f.Repo.Service(f.Service)
	if !ok {
		return fmt.Errorf("feature service %q is not in the definitions", f.Service)
	}
	for _, ref := range svc.Features {
		_, name, _ := strings.Cut(ref, ":")
		f.names = append(f.names, name)
	}
	if f.Timeout <= 0 {
		f.Timeout = 20 * time.Millisecond
	}
	if f.Now == nil {
		f.Now = time.Now
	}
	f.metrics = m
	f.breaker = gobreaker.NewCircuitBreaker[features.Vector](gobreaker.Settings{
		Name: "features-" + f.Service, MaxRequests: 1, Timeout: 10 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			m.BreakerState.WithLabelValues(f.Service).Set(map[gobreaker.State]float64{gobreaker.StateClosed: 0, gobreaker.StateHalfOpen: 1, gobreaker.StateOpen: 2}[to])
		},
	})
	m.BreakerState.WithLabelValues(f.Service).Set(0)
	return nil
}

// Fill sets the service's features that the served models use (uses) and each row lacks.
// It returns their provenance (for the prediction log's features column) and, when some fell
// back to their defaults, a note saying which and why (the log's fallback column).
func (f *FeatureFiller) Fill(ctx context.Context, model string, uses func(string) bool, rows []map[string]float64, attrs map[string]string) (string, *predlog.FeatureProvenance, error) {
	missing := false
	for _, r := range rows {
		for _, n := range f.names {
			if _, ok := r[n]; !ok && uses(n) {
				missing = true
			}
		}
	}
	if !missing {
		return "", nil, nil
	}
	parts := make([]string, len(f.Keys))
	for i, k := range f.Keys {
		v, ok := attrs[k]
		if !ok || v == "" {
			return "", nil, fmt.Errorf("attributes.%s is needed to read the features of %s from the online store", k, f.Service)
		}
		parts[i] = v
	}
	key := strings.Join(parts, "|")
	vec, err := f.breaker.Execute(func() (features.Vector, error) {
		ctx, cancel := context.WithTimeout(ctx, f.Timeout)
		defer cancel()
		type result struct {
			v   features.Vector
			err error
		}
		done := make(chan result, 1)
		go func() {
			v, err := features.ReadService(ctx, f.Store, f.Repo, f.Service, key, f.Now())
			done <- result{v, err}
		}()
		select {
		case r := <-done:
			return r.v, r.err
		case <-ctx.Done():
			return features.Vector{}, ctx.Err()
		}
	})
	result := "ok"
	if err != nil {
		reason := "error"
		switch {
		case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
			reason = "circuit_open"
		case isTimeout(err):
			reason = "timeout"
		}
		result = "store_" + reason
		why := "online store failed (" + reason + ")"
		vec = features.Vector{Values: make([]float64, len(f.names)), Missing: make([]string, len(f.names)), Age: make([]time.Duration, len(f.names))}
		for i := range f.names {
			vec.Values[i], vec.Missing[i] = math.NaN(), why
		}
	}
	var notes []string
	served, used, oldest := 0, 0, time.Duration(0)
	for i, n := range f.names {
		if !uses(n) {
			continue
		}
		used++
		v := vec.Values[i]
		if vec.Missing[i] != "" {
			d, ok := f.Defaults[n]
			if !ok {
				return "", nil, fmt.Errorf("feature %s of %s: %s, and no default is configured", n, key, vec.Missing[i])
			}
			v = d
			notes = append(notes, fmt.Sprintf("%s: %s; used the default %g", n, vec.Missing[i], d))
		} else {
			served++
			oldest = max(oldest, vec.Age[i])
		}
		for _, r := range rows {
			if _, ok := r[n]; !ok {
				r[n] = v
			}
		}
	}
	if result == "ok" && served < used {
		result = "partial"
	}
	f.metrics.Enrichments.WithLabelValues(model, f.Service, result).Inc()
	prov := &predlog.FeatureProvenance{Service: f.Service, Served: served, FellBack: used - served, OldestAgeS: oldest.Seconds()}
	if len(notes) == 0 {
		return "", prov, nil // every value came from the store: provenance, not a fallback
	}
	return fmt.Sprintf("features %s of %s: %s", f.Service, key, strings.Join(notes, "; ")), prov, nil
}
