package serving

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// loaded is a model version in memory.
type loaded struct {
	version int
	model   *model.Model
	keys    inputKeys // the model's features, for the prediction log
	// busy adds the time the version's requests took (driftline_serving_busy_seconds_total):
	// what the process's CPU is apportioned by, per model and version.
	busy prometheus.Counter
}

// table is what a model serves right now; swapped atomically as a whole.
type table struct {
	production *loaded
	canary     *loaded
	share      float64
	shadow     bool
	paired     float64 // share of requests the other model also scores during a canary
	// pinned: a request's own table when it names the canary's version (production is then
	// that version, answering under pipeline.RoutePinned).
	pinned bool
	// labels is the range feedback labels must fall in: the target's in the model's
	// registered contract (nil bounds: open on that side).
	labels labelRange
}

// labelRange bounds the labels a model takes.
type labelRange struct{ min, max *float64 }

// check refuses a label that is not finite or lies outside the range.
func (r labelRange) check(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("label %v is not a finite number", v)
	case r.min != nil && v < *r.min:
		return fmt.Errorf("label %v is under the target's minimum %v in the model's registered contract", v, *r.min)
	case r.max != nil && v > *r.max:
		return fmt.Errorf("label %v is over the target's maximum %v in the model's registered contract", v, *r.max)
	}
	return nil
}

// InCanary reports whether a routing key falls in the canary share: a stable FNV-1a hash of
// the key, so the same key always gets the same model while the share is unchanged.
func InCanary(key string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()%10000) < share*10000
}

// watcher follows one model's deployment pointer.
type watcher struct {
	name    string
	reg     *registry.Registry
	metrics *Metrics
	current atomic.Pointer[table]
	etag    string
	mu      sync.Mutex
	cache   map[int]*loaded
	lastErr atomic.Pointer[string]
}

func newWatcher(name string, reg *registry.Registry, m *Metrics) *watcher {
	w := &watcher{name: name, reg: reg, metrics: m, cache: map[int]*loaded{}}
	w.current.Store(&table{})
	return w
}

func (w *watcher) load(ctx context.Context, v int) (*loaded, error) {
	if v == 0 {
		return nil, nil
	}
	if l, ok := w.cache[v]; ok {
		return l, nil
	}
	m, _, err := w.reg.LoadServingModel(ctx, w.name, v)
	if err != nil {
		return nil, err
	}
	// Warm the model once before it takes traffic.
	x := make([]float64, len(m.Features))
	_ = m.Predict(x)
	l := &loaded{version: v, model: m, keys: newInputKeys(m.Features)}
	if w.metrics != nil {
		l.busy = w.metrics.Busy.WithLabelValues(w.name, strconv.Itoa(v))
	}
	w.cache[v] = l
	return l, nil
}

// poll checks the pointer (a conditional GET: unchanged costs one 304) and swaps in the new
// table only when every version it names loaded; otherwise the previous table keeps serving.
func (w *watcher) poll(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	rc, obj, err := w.reg.Store.Get(ctx, registry.DeploymentKey(w.name), objstore.GetOptions{IfNoneMatch: w.etag})
	if errors.Is(err, objstore.ErrNotModified) {
		return nil
	}
	if errors.Is(err, objstore.ErrNotFound) {
		return w.fail(fmt.Errorf("model %s: %w", w.name, errNoDeployment))
	}
	if err != nil {
		return w.fail(err)
	}
	rc.Close()
	d, etag, err := w.reg.Deployment(ctx, w.name)
	if err != nil {
		return w.fail(err)
	}
	prod, err := w.load(ctx, d.Production)
	if err != nil {
		return w.fail(fmt.Errorf("load production v%d: %w", d.Production, err))
	}
	can, err := w.load(ctx, d.Canary)
	if err != nil {
		return w.fail(fmt.Errorf("load canary v%d: %w", d.Canary, err))
	}
	// The labels' range comes from the registered contract, read with each new pointer.
	var labels labelRange
	if sp, _, _, err := w.reg.CurrentSpec(ctx, w.name); err == nil {
		if col, ok := sp.Contract.Column(sp.Target); ok {
			labels = labelRange{min: col.Min, max: col.Max}
		}
	} else if !errors.Is(err, registry.ErrNotFound) {
		return w.fail(fmt.Errorf("the registered spec of %s: %w", w.name, err))
	}
	w.current.Store(&table{production: prod, canary: can, share: d.CanaryShare, shadow: d.CanaryMode == spec.ModeShadow, paired: pairedShare(d),
		labels: labels})
	w.etag = etag
	if etag == "" {
		w.etag = obj.ETag
	}
	w.lastErr.Store(nil)
	w.metrics.Version.WithLabelValues(w.name, "production").Set(float64(d.Production))
	w.metrics.Version.WithLabelValues(w.name, "canary").Set(float64(d.Canary))
	for v := range w.cache { // keep only what is deployed
		if v != d.Production && v != d.Canary {
			delete(w.cache, v)
		}
	}
	slog.Info("deployment loaded", "model", w.name, "production", d.Production, "canary", d.Canary, "share", d.CanaryShare)
	return nil
}

func (w *watcher) fail(err error) error {
	msg := err.Error()
	if prev := w.lastErr.Swap(&msg); prev == nil || *prev != msg {
		slog.Warn("deployment not loaded; previous models keep serving", "model", w.name, "err", err)
	}
	if !errors.Is(err, errNoDeployment) {
		w.metrics.LoadErrors.WithLabelValues(w.name).Inc()
	}
	return err
}

var errNoDeployment = errors.New("no deployment yet")

func (w *watcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_ = w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
