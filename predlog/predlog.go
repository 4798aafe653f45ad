package predlog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
)

// Record is one prediction.
type Record struct {
	RequestID  string  `parquet:"request_id"`
	TimeUnixMs int64   `parquet:"time_unix_ms"`
	Model      string  `parquet:"model"`
	Version    int32   `parquet:"version"`
	Route      string  `parquet:"route"` // production, canary
	RoutingKey string  `parquet:"routing_key"`
	LatencyUs  int64   `parquet:"latency_us"`
	Error      string  `parquet:"error"` // empty when the model answered
	Prediction float64 `parquet:"prediction"`
	// InputNames and InputValues are the request's features as typed columns: in the answering
	// model's feature order, then any others the request sent (NaN: missing). Parts written
	// before them carry Inputs instead; EachInput reads either.
	InputNames  []string  `parquet:"input_names"`
	InputValues []float64 `parquet:"input_values"`
	// Inputs is the request's features as a JSON object, in parts written before the typed
	// columns (read by EachInput; no longer written).
	Inputs string `parquet:"inputs"`
	// Attributes are the request's non-feature fields (e.g. the protected attribute) as JSON.
	Attributes string `parquet:"attributes"`
	// Fallback says why a fallback answered or a feature was filled in (empty: none).
	Fallback string `parquet:"fallback"`
	// Features is where the feature store's values came from (FeatureProvenance as JSON;
	// empty: none were read). Parts written before it read as empty.
	Features string `parquet:"features"`
	// TraceID is the request's trace (W3C, hex; empty: not traced): a logged prediction links
	// to its trace. Parts written before it read as empty.
	TraceID string `parquet:"trace_id"`
}

// FeatureProvenance says which of a request's features serving read from the online store
// (docs/features.md): the service, how many of the features the model uses it served, how
// many fell back (missing, expired, or the store failed), and the oldest served value's age.
type FeatureProvenance struct {
	Service    string  `json:"service"`
	Served     int     `json:"served"`
	FellBack   int     `json:"fell_back"`
	OldestAgeS float64 `json:"oldest_age_s"`
}

// Label is a ground-truth label for an answered request (feedback/<model>/dt=.../part-*.parquet).
type Label struct {
	RequestID  string  `parquet:"request_id"`
	TimeUnixMs int64   `parquet:"time_unix_ms"`
	Model      string  `parquet:"model"`
	Label      float64 `parquet:"label"`
	// Token is the label token the client sent (checked again by the canary).
	Token string `parquet:"token"`
}

// FeedbackPrefix is where one day of a model's labels lives.
func FeedbackPrefix(model string, day time.Time) string {
	return fmt.Sprintf("feedback/%s/dt=%s/", model, day.UTC().Format(dataset.DateLayout))
}

// Prefix is where one day of a model's log lives.
func Prefix(model string, day time.Time) string {
	return fmt.Sprintf("predictions/%s/dt=%s/", model, day.UTC().Format(dataset.DateLayout))
}

// Writer buffers records in a bounded channel and flushes them as Parquet by size or time.
// Add never blocks: when the buffer is full the record is counted as dropped.
type Writer[T any] struct {
	store    objstore.Bucket
	replica  string
	part     func(T) partition
	prefix   func(partition) string
	ch       chan T
	maxBatch int
	interval time.Duration
	dropped  atomic.Int64
	written  atomic.Int64
	OnDrop   func()
	seq      atomic.Int64
	done     chan struct{}
	once     sync.Once
}

// partition is a model and a UTC day (days since the epoch): one object prefix.
type partition struct {
	model string
	day   int64
}

const msPerDay = 24 * 60 * 60 * 1000

func partitionOf(model string, unixMs int64) partition {
	day := unixMs / msPerDay
	if unixMs%msPerDay < 0 {
		day-- // floor for times before 1970
	}
	return partition{model, day}
}

func (p partition) start() time.Time { return time.UnixMilli(p.day * msPerDay) }

// NewWriter starts the flusher of prediction records; Close flushes what is left.
func NewWriter(store objstore.Bucket, replica string, buffer, maxBatch int, interval time.Duration) *Writer[Record] {
	return newWriter(store, replica, buffer, maxBatch, interval,
		func(r Record) partition { return partitionOf(r.Model, r.TimeUnixMs) },
		func(p partition) string { return Prefix(p.model, p.start()) })
}

// NewLabelWriter starts the flusher of feedback labels.
func NewLabelWriter(store objstore.Bucket, replica string, buffer, maxBatch int, interval time.Duration) *Writer[Label] {
	return newWriter(store, replica, buffer, maxBatch, interval,
		func(l Label) partition { return partitionOf(l.Model, l.TimeUnixMs) },
		func(p partition) string { return FeedbackPrefix(p.model, p.start()) })
}

// newWriter: part names each record's partition cheaply (it runs per record); prefix, once
// per partition in a batch, names its objects.
func newWriter[T any](store objstore.Bucket, replica string, buffer, maxBatch int, interval time.Duration, part func(T) partition, prefix func(partition) string) *Writer[T] {
	w := &Writer[T]{store: store, replica: replica, part: part, prefix: prefix, ch: make(chan T, buffer), maxBatch: maxBatch, interval: interval, done: make(chan struct{})}
	go w.run()
	return w
}

// Add enqueues a record without blocking.
func (w *Writer[T]) Add(r T) {
	select {
	case w.ch <- r:
	default:
		w.dropped.Add(1)
		if w.OnDrop != nil {
			w.OnDrop()
		}
	}
}

// Dropped is the number of records lost to a full buffer.
func (w *Writer[T]) Dropped() int64 { return w.dropped.Load() }

// Written is the number of records flushed to storage.
func (w *Writer[T]) Written() int64 { return w.written.Load() }

// Close stops accepting records and flushes the rest.
func (w *Writer[T]) Close() {
	w.once.Do(func() { close(w.ch) })
	<-w.done
}

func (w *Writer[T]) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var batch, retry []T // retry: records a failed write kept for the next flush
	flush := func() {
		retry = w.flush(append(retry, batch...))
		batch = nil
		if over := len(retry) - cap(w.ch); over > 0 { // storage down for long: bounded, oldest go
			w.drop(over)
			retry = append(retry[:0:0], retry[over:]...)
		}
	}
	for {
		select {
		case r, ok := <-w.ch:
			if !ok {
				// Closing: a few more tries for what storage refused, then count what is lost.
				pending := append(retry, batch...)
				for attempt := 0; attempt < 3 && len(pending) > 0; attempt++ {
					if attempt > 0 {
						time.Sleep(time.Second)
					}
					pending = w.flush(pending)
				}
				w.drop(len(pending))
				return
			}
			batch = append(batch, r)
			if len(batch) >= w.maxBatch {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

func (w *Writer[T]) drop(n int) {
	if n <= 0 {
		return
	}
	w.dropped.Add(int64(n))
	if w.OnDrop != nil {
		for range n {
			w.OnDrop()
		}
	}
}

// flush writes a batch, one object per partition, and returns the records of the objects
// that could not be written (storage down): they are tried again at the next flush, so a
// storage restart loses nothing the buffer can hold.
func (w *Writer[T]) flush(batch []T) (failed []T) {
	if len(batch) == 0 {
		return nil
	}
	byPart := map[partition][]T{}
	var parts []partition
	for _, r := range batch {
		k := w.part(r)
		if _, ok := byPart[k]; !ok {
			parts = append(parts, k)
		}
		byPart[k] = append(byPart[k], r)
	}
	for _, k := range parts {
		rows, p := byPart[k], w.prefix(k)
		data, err := dataset.EncodeParquet(rows)
		if err != nil {
			slog.Error("log encode", "err", err)
			w.drop(len(rows))
			continue
		}
		key := fmt.Sprintf("%spart-%d-%s-%06d.parquet", p, time.Now().UnixNano(), w.replica, w.seq.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = w.store.Put(ctx, key, data, objstore.PutOptions{IfNoneMatch: true})
		cancel()
		if err != nil {
			slog.Warn("log flush failed; kept for the next flush", "key", key, "records", len(rows), "err", err)
			failed = append(failed, rows...)
			continue
		}
		w.written.Add(int64(len(rows)))
	}
	return failed
}

// Read returns a model's prediction records with since <= time < until.
func Read(ctx context.Context, b objstore.Bucket, model string, since, until time.Time) ([]Record, error) {
	return readLog(ctx, b, since, until, func(day time.Time) string { return Prefix(model, day) }, func(r Record) int64 { return r.TimeUnixMs })
}

// ReadLabels returns a model's feedback labels with since <= time < until.
func ReadLabels(ctx context.Context, b objstore.Bucket, model string, since, until time.Time) ([]Label, error) {
	return readLog(ctx, b, since, until, func(day time.Time) string { return FeedbackPrefix(model, day) }, func(l Label) int64 { return l.TimeUnixMs })
}

func readLog[T any](ctx context.Context, b objstore.Bucket, since, until time.Time, prefix func(time.Time) string, at func(T) int64) ([]T, error) {
	var keys []string
	for day := since.UTC().Truncate(24 * time.Hour); day.Before(until); day = day.AddDate(0, 0, 1) {
		objs, err := b.List(ctx, prefix(day))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			// A part written before since holds only records from before since: skip it.
			if !strings.HasSuffix(o.Key, ".parquet") || writtenBefore(o.Key, since) {
				continue
			}
			keys = append(keys, o.Key)
		}
	}
	// Read the parts on a few connections at once; the result keeps the key order.
	parts := make([][]T, len(keys))
	errs := make([]error, len(keys))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(8, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(keys); i = int(next.Add(1)) - 1 {
				ra, obj, err := objstore.NewReaderAt(ctx, b, keys[i])
				if err == nil {
					parts[i], err = parquet.Read[T](ra, obj.Size)
				}
				if err != nil {
					errs[i] = fmt.Errorf("log %s: %w", keys[i], err)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []T
	for _, rows := range parts {
		for _, r := range rows {
			t := time.UnixMilli(at(r))
			if !t.Before(since) && t.Before(until) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// writtenBefore reads the write time from a part's name (part-<unix nanos>-<replica>-<seq>)
// and reports whether it is before t; a name it cannot read is never skipped.
func writtenBefore(key string, t time.Time) bool {
	n, ok := writtenNanos(key)
	return ok && time.Unix(0, n).Before(t)
}

// Drift compares one version's live answers (successful ones, any route) in [since, until)
// with the reference distribution of its outputs, using the same drift code as features.
func Drift(ctx context.Context, b objstore.Bucket, model string, version int, ref drift.Profile, since, until time.Time, cfg drift.Config) (drift.Report, int, error) {
	recs, err := Read(ctx, b, model, since, until)
	if err != nil {
		return drift.Report{}, 0, err
	}
	w := drift.NewWindow(ref)
	i := w.Index(drift.PredictionFeature)
	if i < 0 {
		return drift.Report{}, 0, fmt.Errorf("prediction profile of %s v%d has no %q feature", model, version, drift.PredictionFeature)
	}
	n := 0
	for k, r := range recs {
		if int(r.Version) != version || r.Error != "" {
			continue
		}
		w.AddNumeric(i, r.Prediction, uint64(k))
		n++
	}
	return w.Report(cfg), n, nil
}

// Mark is a position in a log: the parts written up to it (by the write time in their name,
// then by key) are behind it. The zero Mark is before every part.
type Mark struct {
	WrittenNanos int64  `json:"written_nanos"`
	Key          string `json:"key"`
}

// Part is one log object.
type Part struct {
	Key          string
	WrittenNanos int64
}

func (p Part) after(m Mark) bool {
	return p.WrittenNanos > m.WrittenNanos || p.WrittenNanos == m.WrittenNanos && p.Key > m.Key
}

// PartsBetween lists the prediction-log parts (labels: the feedback parts) written after
// after and at most at upto, in write order. A part is named when its write starts and is
// visible once its upload ends (at most 30 s later): callers keep upto that far behind now, so
// no part can appear behind a mark already passed. Days from the one before after's are
// listed (a part retried after an outage lands in its records' day).
func PartsBetween(ctx context.Context, b objstore.Bucket, model string, labels bool, after Mark, upto time.Time) ([]Part, error) {
	prefix := func(day time.Time) string { return Prefix(model, day) }
	if labels {
		prefix = func(day time.Time) string { return FeedbackPrefix(model, day) }
	}
	from := upto.Add(-48 * time.Hour)
	if after.WrittenNanos > 0 {
		from = time.Unix(0, after.WrittenNanos).Add(-24 * time.Hour)
	}
	var out []Part
	for day := from.UTC().Truncate(24 * time.Hour); !day.After(upto); day = day.AddDate(0, 0, 1) {
		objs, err := b.List(ctx, prefix(day))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			n, ok := writtenNanos(o.Key)
			if !strings.HasSuffix(o.Key, ".parquet") || !ok {
				continue
			}
			p := Part{Key: o.Key, WrittenNanos: n}
			if p.after(after) && n <= upto.UnixNano() {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b Part) int {
		if c := cmp.Compare(a.WrittenNanos, b.WrittenNanos); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// ReadPart reads one log part (Record or Label) with one GET (a part holds at most a
// writer's batch; reading it page by page took a ranged GET per page, dozens per part); a
// part that does not decode is an error naming it.
func ReadPart[T any](ctx context.Context, b objstore.Bucket, key string) ([]T, error) {
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return nil, err
	}
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: log part %s: %v", dataset.ErrInvalidData, b.URI(key), err)
	}
	return rows, nil
}

func writtenNanos(key string) (int64, bool) {
	base := key[strings.LastIndex(key, "/")+1:]
	rest, ok := strings.CutPrefix(base, "part-")
	if !ok {
		return 0, false
	}
	ns, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	return n, err == nil
}

// EachInput calls f with each of the request's features (NaN or a JSON null: missing, not
// called): the typed columns, or in an older part the JSON object. False: the record's
// inputs are neither (a JSON value that is not an object of numbers and nulls).
func (r Record) EachInput(f func(name string, v float64)) bool {
	if len(r.InputNames) > 0 || r.Inputs == "" {
		if len(r.InputNames) != len(r.InputValues) {
			return false
		}
		for i, name := range r.InputNames {
			if v := r.InputValues[i]; !math.IsNaN(v) {
				f(name, v)
			}
		}
		return true
	}
	var x map[string]*float64
	if json.Unmarshal([]byte(r.Inputs), &x) != nil || x == nil {
		return false
	}
	for name, v := range x {
		if v != nil {
			f(name, *v)
		}
	}
	return true
}

// InputMap is the request's features by name (EachInput); false as EachInput.
func (r Record) InputMap() (map[string]float64, bool) {
	out := make(map[string]float64, max(len(r.InputNames), 8))
	ok := r.EachInput(func(name string, v float64) { out[name] = v })
	return out, ok
}

// Attribute is one of the request's attributes (a number as it prints; "" when absent or the
// attributes are not a JSON object).
func (r Record) Attribute(name string) string {
	if r.Attributes == "" || name == "" {
		return ""
	}
	var a map[string]any
	if json.Unmarshal([]byte(r.Attributes), &a) != nil {
		return ""
	}
	switch v := a[name].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}
