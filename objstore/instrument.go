package objstore

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation names the Bucket call a measurement belongs to.
type Operation string

// The operations of Bucket.
const (
	OpGet    Operation = "get"
	OpPut    Operation = "put"
	OpHead   Operation = "head"
	OpList   Operation = "list"
	OpDelete Operation = "delete"
)

// Operations lists every operation, in a fixed order (label values are pre-initialised).
var Operations = []Operation{OpGet, OpPut, OpHead, OpList, OpDelete}

// OpStats are one operation's totals.
type OpStats struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Bytes: bytes read from the store (get) or written to it (put).
	Bytes int64 `json:"bytes"`
}

// Counting is a Bucket decorator that counts requests, failures and bytes per operation, and
// the bytes read per key (so a test can tell how often each object byte was fetched). It
// optionally exports the totals as Prometheus metrics (see NewStoreMetrics).
type Counting struct {
	Bucket
	metrics *StoreMetrics

	mu    sync.Mutex
	ops   map[Operation]*OpStats
	byKey map[string]int64 // nil: bytes per key are not kept (WrapWithMetrics)
}

var _ Bucket = (*Counting)(nil)

// StoreMetrics are the Prometheus series of an instrumented bucket.
type StoreMetrics struct {
	Requests *prometheus.CounterVec
	Errors   *prometheus.CounterVec
	Bytes    *prometheus.CounterVec
}

// NewStoreMetrics registers driftline_objstore_{requests,errors,bytes}_total{operation} on reg.
func NewStoreMetrics(reg prometheus.Registerer) *StoreMetrics {
	const ns, sub = "driftline", "objstore"
	m := &StoreMetrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Object storage requests by operation."}, []string{"operation"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Object storage requests that failed (not found and lost conditional writes included), by operation."}, []string{"operation"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_total",
			Help: "Bytes read (get) or written (put), by operation."}, []string{"operation"}),
	}
	for _, op := range Operations {
		m.Requests.WithLabelValues(string(op))
		m.Errors.WithLabelValues(string(op))
		m.Bytes.WithLabelValues(string(op))
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Errors, m.Bytes)
	}
	return m
}

// WrapWithCounting decorates b, keeping the bytes read per key too (tests and benchmarks);
// metrics may be nil (counts are still kept for Stats).
func WrapWithCounting(b Bucket, metrics *StoreMetrics) *Counting {
	c := WrapWithMetrics(b, metrics)
	c.byKey = map[string]int64{}
	return c
}

// WrapWithMetrics decorates b for a long-running process: totals per operation and the
// Prometheus series, in fixed memory (no bytes per key).
func WrapWithMetrics(b Bucket, metrics *StoreMetrics) *Counting {
	c := &Counting{Bucket: b, metrics: metrics, ops: map[Operation]*OpStats{}}
	for _, op := range Operations {
		c.ops[op] = &OpStats{}
	}
	return c
}

func (c *Counting) record(op Operation, key string, n int64, err error) {
	if errors.Is(err, ErrNotModified) {
		err = nil // a conditional read answered "you have it": a success
	}
	c.mu.Lock()
	st := c.ops[op]
	st.Requests++
	st.Bytes += n
	if err != nil {
		st.Errors++
	}
	if op == OpGet && n > 0 && c.byKey != nil {
		c.byKey[key] += n
	}
	c.mu.Unlock()
	if c.metrics != nil {
		c.metrics.Requests.WithLabelValues(string(op)).Inc()
		if err != nil {
			c.metrics.Errors.WithLabelValues(string(op)).Inc()
		}
		if n > 0 {
			c.metrics.Bytes.WithLabelValues(string(op)).Add(float64(n))
		}
	}
}

// Stats returns a copy of the totals per operation.
func (c *Counting) Stats() map[Operation]OpStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Operation]OpStats, len(c.ops))
	for op, st := range c.ops {
		out[op] = *st
	}
	return out
}

// BytesRead returns the bytes read per key since the last Reset.
func (c *Counting) BytesRead() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byKey))
	for k, n := range c.byKey {
		out[k] = n
	}
	return out
}

// Reset zeroes the counts (not the Prometheus series, which are cumulative).
func (c *Counting) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.ops {
		*st = OpStats{}
	}
	if c.byKey != nil {
		c.byKey = map[string]int64{}
	}
}

// countingReader counts the bytes a caller actually reads from a Get body.
type countingReader struct {
	io.ReadCloser
	n    atomic.Int64
	done func(n int64)
	once sync.Once
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

func (r *countingReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(func() { r.done(r.n.Load()) })
	return err
}

// Get implements Bucket; the bytes are counted as they are read, when the body is closed.
func (c *Counting) Get(ctx context.Context, key string, opts GetOptions) (io.ReadCloser, Object, error) {
	rc, obj, err := c.Bucket.Get(ctx, key, opts)
	if err != nil {
		c.record(OpGet, key, 0, err)
		return rc, obj, err
	}
	return &countingReader{ReadCloser: rc, done: func(n int64) { c.record(OpGet, key, n, nil) }}, obj, nil
}

// Put implements Bucket.
func (c *Counting) Put(ctx context.Context, key string, body []byte, opts PutOptions) (Object, error) {
	obj, err := c.Bucket.Put(ctx, key, body, opts)
	n := int64(0)
	if err == nil {
		n = int64(len(body))
	}
	c.record(OpPut, key, n, err)
	return obj, err
}

// Head implements Bucket.
func (c *Counting) Head(ctx context.Context, key string) (Object, error) {
	obj, err := c.Bucket.Head(ctx, key)
	c.record(OpHead, key, 0, err)
	return obj, err
}

// List implements Bucket.
func (c *Counting) List(ctx context.Context, prefix string) ([]Object, error) {
	objs, err := c.Bucket.List(ctx, prefix)
	c.record(OpList, prefix, 0, err)
	return objs, err
}

// Delete implements Bucket.
func (c *Counting) Delete(ctx context.Context, key string) error {
	err := c.Bucket.Delete(ctx, key)
	c.record(OpDelete, key, 0, err)
	return err
}
