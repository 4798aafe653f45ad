package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
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
	Store features.Online
	// Repo holds the definitions; or Load reads the applied ones (driftline features apply):
	// serving may start before they are applied, and picks up a new version within ReloadEvery.
	Repo        features.Repo
	Load        func(context.Context) (features.Repo, bool, error)
	ReloadEvery time.Duration
	Service     string
	// Keys are the request attributes that make the entity key, in the entity's key order.
	Keys    []string
	Timeout time.Duration
	Now     func() time.Time
	// Defaults are used, per feature, for a value the store cannot give.
	Defaults map[string]float64

	state    atomic.Pointer[fillerState]
	lastLoad atomic.Int64 // UnixNano of the last Load attempt
	breaker  *gobreaker.CircuitBreaker[features.Vector]
	metrics  *Metrics
}

// fillerState is the definitions in use and the service's features as the model names them
// (after view:).
type fillerState struct {
	repo  features.Repo
	names []string
}

func newFillerState(r features.Repo, service string) (*fillerState, error) {
	svc, ok := r.Service(service)
	if !ok {
		return nil, fmt.Errorf("feature service %q is not in the definitions", service)
	}
	st := &fillerState{repo: r}
	for _, ref := range svc.Features {
		_, name, _ := strings.Cut(ref, ":")
		st.names = append(st.names, name)
	}
	return st, nil
}

// current returns the definitions in use: loaded on first need (at most once a second while
// none are applied) and reloaded in the background every ReloadEvery.
func (f *FeatureFiller) current(ctx context.Context) *fillerState {
	st := f.state.Load()
	if f.Load == nil {
		return st
	}
	last, now := f.lastLoad.Load(), time.Now().UnixNano()
	every := f.ReloadEvery
	if st == nil {
		every = min(every, time.Second)
	}
	if time.Duration(now-last) < every || !f.lastLoad.CompareAndSwap(last, now) {
		return st
	}
	load := func(ctx context.Context) {
		r, ok, err := f.Load(ctx)
		if err != nil || !ok {
			return
		}
		if next, err := newFillerState(r, f.Service); err == nil {
			f.state.Store(next)
		}
	}
	if st == nil {
		load(ctx)
		return f.state.Load()
	}
	go load(context.WithoutCancel(ctx))
	return st
}

func (f *FeatureFiller) init(m *Metrics) error {
	if f.Load == nil {
		st, err := newFillerState(f.Repo, f.Service)
		if err != nil {
			return err
		}
		f.state.Store(st)
	}
	if f.ReloadEvery <= 0 {
		f.ReloadEvery = 30 * time.Second
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

// entityKey is the entity's key from the request's attributes, in the entity's key order.
func (f *FeatureFiller) entityKey(attrs map[string]string) (string, error) {
	parts := make([]string, len(f.Keys))
	for i, k := range f.Keys {
		v, ok := attrs[k]
		if !ok || v == "" {
			return "", fmt.Errorf("attributes.%s is needed to read the features of %s from the online store", k, f.Service)
		}
		parts[i] = v
	}
	return strings.Join(parts, "|"), nil
}

// read reads the service's vector for key through the circuit breaker, within the timeout.
// A failed read is a vector of missing values saying why; result is the enrichment metric's
// result label (ok, store_timeout, store_circuit_open, store_error).
func (f *FeatureFiller) read(ctx context.Context, st *fillerState, key string) (features.Vector, string) {
	vec, err := f.breaker.Execute(func() (features.Vector, error) {
		ctx, cancel := context.WithTimeout(ctx, f.Timeout)
		defer cancel()
		type result struct {
			v   features.Vector
			err error
		}
		done := make(chan result, 1)
		go func() {
			v, err := features.ReadService(ctx, f.Store, st.repo, f.Service, key, f.Now())
			done <- result{v, err}
		}()
		select {
		case r := <-done:
			return r.v, r.err
		case <-ctx.Done():
			return features.Vector{}, ctx.Err()
		}
	})
	if err == nil {
		return vec, "ok"
	}
	reason := "error"
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		reason = "circuit_open"
	case isTimeout(err):
		reason = "timeout"
	}
	why := "online store failed (" + reason + ")"
	vec = features.Vector{Values: make([]float64, len(st.names)), Missing: make([]string, len(st.names)), Age: make([]time.Duration, len(st.names))}
	for i := range st.names {
		vec.Values[i], vec.Missing[i] = math.NaN(), why
	}
	return vec, "store_" + reason
}

// Fill sets the service's features that the served models use (uses) and each row lacks.
// It returns their provenance (for the prediction log's features column) and, when some fell
// back to their defaults, a note saying which and why (the log's fallback column).
func (f *FeatureFiller) Fill(ctx context.Context, model string, uses func(string) bool, rows []map[string]float64, attrs map[string]string) (string, *predlog.FeatureProvenance, error) {
	st := f.current(ctx)
	if st == nil {
		return "", nil, nil // no definitions applied yet: the request is checked as it came
	}
	missing := false
	for _, r := range rows {
		for _, n := range st.names {
			if _, ok := r[n]; !ok && uses(n) {
				missing = true
			}
		}
	}
	if !missing {
		return "", nil, nil
	}
	key, err := f.entityKey(attrs)
	if err != nil {
		return "", nil, err
	}
	vec, result := f.read(ctx, st, key)
	var notes []string
	served, used, oldest := 0, 0, time.Duration(0)
	for i, n := range st.names {
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
