package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// Metrics of an ingest worker.
type Metrics struct {
	Records    *prometheus.CounterVec
	Files      *prometheus.CounterVec
	LagRecords *prometheus.GaugeVec
	LagSeconds *prometheus.GaugeVec
	Newest     *prometheus.GaugeVec
	Triggers   *prometheus.CounterVec
}

// NewMetrics registers the ingest metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftline_ingest_records_total",
			Help: "Records consumed, by result: accepted, quarantined, late (a closed day's, kept apart) or skipped (recorded already)."}, []string{"dataset", "result"}),
		Files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftline_ingest_files_total", Help: "Files written (data and quarantine ranges)."}, []string{"dataset"}),
		LagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "driftline_ingest_lag_records",
			Help: "Records of a partition not yet written and committed (the partition's high watermark minus the next offset)."}, []string{"dataset", "topic", "partition"}),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "driftline_ingest_lag_seconds",
			Help: "How long ago the oldest record not yet written was produced (0 when caught up)."}, []string{"dataset"}),
		Newest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "driftline_ingest_newest_complete_partition_timestamp_seconds",
			Help: "The start of the newest closed (complete) day partition, Unix seconds."}, []string{"dataset"}),
		Triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftline_ingest_triggers_total",
			Help: "Runs a closed partition asked for, by result (started, busy: a run was in progress, error)."}, []string{"dataset", "result"}),
	}
	reg.MustRegister(m.Records, m.Files, m.LagRecords, m.LagSeconds, m.Newest, m.Triggers)
	return m
}

type tp struct {
	topic string
	p     int32
}

type partState struct {
	open *span
	// skipTo: records at or before it are recorded already (written by us or a previous owner).
	skipTo int64
	// the partition's watermark: the latest event time written, and its first day.
	maxEvent int64
	firstDay string
	// for the lag in seconds: the produce time of the last record consumed, and whether the
	// partition is behind its high watermark.
	lastTimestamp time.Time
	behind        bool
}

// Worker consumes the spec's topics into the dataset.
type Worker struct {
	Spec    Spec
	Store   objstore.Bucket
	Metrics *Metrics
	Log     *slog.Logger
	// OnClosed is called once per closed day (the trigger), after its marker is written.
	OnClosed func(ctx context.Context, day string) error
	// InstanceID makes the worker a static member of the group (KIP-345): a restart with the
	// same ID takes over its old membership and assignment instead of leaving a member behind
	// for the session timeout. It must be unique per worker (a StatefulSet pod's name).
	InstanceID string
	// ClientOpts are added to the Kafka client's (tests shorten the group's timeouts).
	ClientOpts []kgo.Opt

	mu     sync.Mutex
	parts  map[tp]*partState
	closed map[string]bool
	queues map[tp]*queue
	// completed: per partition, the offset after its last written range, to commit.
	completed map[tp]int64
	writeErr  error
	cl        *kgo.Client
	avro      *avroDecoder
	ctx       context.Context
}

// Run consumes until ctx ends (or the client fails to start).
func (w *Worker) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if err := w.setup(ctx); err != nil {
		return err
	}
	cl, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	w.cl = cl
	// With BlockRebalanceOnPoll, leaving the group waits for the rebalance to be allowed. The
	// queued writes finish first (deferred calls run last to first).
	defer cl.CloseAllowingRebalance()
	defer func() {
		w.mu.Lock()
		keys := make([]tp, 0, len(w.queues))
		for k := range w.queues {
			keys = append(keys, k)
		}
		w.mu.Unlock()
		w.drain(keys)
	}()
	if err := w.loadClosed(ctx); err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	lastClose := time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pctx, 5000)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed")
		}
		ferr := w.take(ctx, fetches)
		if ferr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return ferr // the process exits; a restart resumes from the manifests
		}
		if time.Since(lastClose) > 2*time.Second {
			lastClose = time.Now()
			if err := w.closeDays(ctx, adm); err != nil && ctx.Err() == nil {
				w.Log.Warn("closing days", "error", err)
			}
			w.lagSeconds()
		}
		w.commit(ctx)
		cl.AllowRebalance()
	}
}

// take handles a poll's records in order, partition by partition, then flushes what has
// been idle and reports a write that failed.
func (w *Worker) take(ctx context.Context, fetches kgo.Fetches) error {
	var ferr error
	fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			w.Log.Warn("fetch", "topic", t, "partition", p, "error", err)
		}
	})
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if ferr != nil {
			return
		}
		for _, r := range p.Records {
			if ferr = w.handle(ctx, r); ferr != nil {
				return
			}
		}
		w.lag(p)
	})
	if ferr == nil {
		ferr = w.flushIdle(ctx)
	}
	if ferr == nil {
		ferr = w.failed()
	}
	return ferr
}

// clientOpts are the consumer's options: a group member that commits by hand (after the
// records it took are durable) and holds rebalances off while it handles a poll.
func (w *Worker) clientOpts() []kgo.Opt {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(w.Spec.Brokers...),
		kgo.ConsumerGroup(w.Spec.Group),
		kgo.ConsumeTopics(w.Spec.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(w.Spec.SessionTimeout.Duration),
		kgo.HeartbeatInterval(max(w.Spec.SessionTimeout.Duration/5, 100*time.Millisecond)),
		kgo.RebalanceTimeout(w.Spec.SessionTimeout.Duration + 20*time.Second),
		kgo.OnPartitionsRevoked(w.drop),
		kgo.OnPartitionsLost(w.drop),
	}, w.ClientOpts...)
	if w.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(w.InstanceID))
	}
	return opts
}

func (w *Worker) setup(ctx context.Context) error {
	w.parts, w.closed, w.queues, w.ctx = map[tp]*partState{}, map[string]bool{}, map[tp]*queue{}, ctx
	w.completed = map[tp]int64{}
	if w.Spec.Format == FormatAvro {
		reg, err := NewRegistry(w.Spec.SchemaRegistry)
		if err != nil {
			return fmt.Errorf("schema registry %s: %w", w.Spec.SchemaRegistry, err)
		}
		w.avro = newAvroDecoder(reg, w.Spec.Contract)
	}
	return nil
}

// drop forgets the open ranges of partitions this worker no longer owns: their records
// were not written, and the next owner reads them from the last commit.
func (w *Worker) drop(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	var keys []tp
	for t, ps := range lost {
		for _, p := range ps {
			keys = append(keys, tp{t, p})
		}
	}
	w.drain(keys) // their ranges are written before they move (not committed: the manifests say)
	w.mu.Lock()
	defer w.mu.Unlock()
	for t, ps := range lost {
		for _, p := range ps {
			delete(w.parts, tp{t, p})
			delete(w.completed, tp{t, p})
			w.Metrics.LagRecords.DeleteLabelValues(w.Spec.Dataset, t, strconv.Itoa(int(p)))
		}
	}
}

func (w *Worker) state(k tp) *partState {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.parts[k]
	if st == nil {
		st = &partState{skipTo: -1}
		w.parts[k] = st
	}
	return st
}

// handle routes one record into its partition's open range.
func (w *Worker) handle(ctx context.Context, r *kgo.Record) error {
	k := tp{r.Topic, r.Partition}
	st := w.state(k)
	st.lastTimestamp = r.Timestamp
	if r.Offset <= st.skipTo {
		w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "skipped").Inc()
		return nil
	}
	if st.open == nil {
		m, err := readManifest(ctx, w.Store, ManifestKey(w.Spec.Dataset, r.Topic, r.Partition, r.Offset))
		switch {
		case err == nil && w.filesExist(ctx, m):
			st.skipTo = m.Last // recorded and written: a replay after a crash or a rebalance
			st.maxEvent = max(st.maxEvent, m.MaxEvent)
			w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "skipped").Inc()
			return nil
		case err == nil:
			st.open = &span{first: r.Offset, rows: newRows(w.Spec.Contract), replay: &m, day: m.Day, late: m.Late, opened: time.Now(),
				rowGroupRows: replayGroups(m)}
		case errors.Is(err, objstore.ErrNotFound):
			st.open = &span{first: r.Offset, rows: newRows(w.Spec.Contract), opened: time.Now(), rowGroupRows: w.Spec.RowGroupRows}
		default:
			return err
		}
	}
	sp := st.open
	sp.lastRecord = time.Now()
	if len(r.Value) > w.Spec.MaxRecordBytes {
		sp.quarantined = append(sp.quarantined, oversized(r, w.Spec.MaxRecordBytes))
		sp.last = r.Offset
		w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "quarantined").Inc()
		return w.maybeCut(ctx, k, st)
	}
	var day string
	var t time.Time
	var prob *problem
	if w.avro != nil {
		p, err := w.avro.decode(ctx, r.Value, sp.rows.cells)
		if err != nil {
			return err // the registry, not the record: stop before anything is written
		}
		if prob = p; prob == nil {
			day, t, prob = sp.rows.addCells(w.Spec.EventTime)
		}
	} else {
		day, t, prob = sp.rows.add(r.Value, w.Spec.EventTime)
	}
	if prob != nil {
		sp.quarantined = append(sp.quarantined, quarantine(r.Topic, r.Partition, r.Offset, r.Key, r.Value, *prob))
		sp.last = r.Offset
		w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "quarantined").Inc()
		return w.maybeCut(ctx, k, st)
	}
	late := w.isClosed(day)
	if sp.replay != nil {
		late = sp.replay.Late
	}
	if sp.replay == nil && sp.accepted() > 1 && (day != sp.day || late != sp.late) {
		// An event-day boundary: the range ends before this record, which starts the next.
		next := &span{first: r.Offset, rows: newRows(w.Spec.Contract), opened: time.Now(), lastRecord: time.Now(), rowGroupRows: w.Spec.RowGroupRows}
		moveLast(sp.rows, next.rows)
		if err := w.flush(ctx, k, st); err != nil {
			return err
		}
		st.open, sp = next, next
	}
	if sp.accepted() == 1 {
		sp.day, sp.late = day, late
	}
	sp.maxEvent = max(sp.maxEvent, t.UnixMicro())
	sp.last = r.Offset
	if late {
		w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "late").Inc()
	} else {
		w.Metrics.Records.WithLabelValues(w.Spec.Dataset, "accepted").Inc()
	}
	return w.maybeCut(ctx, k, st)
}

// replayGroups is the row group size a recorded range was written with (a manifest without
// one predates row groups: the file was encoded in one go).
func replayGroups(m Manifest) int {
	if m.RowGroupRows > 0 {
		return m.RowGroupRows
	}
	return math.MaxInt
}

// maybeCut writes the open range when it is full (or a replayed range is complete).
func (w *Worker) maybeCut(ctx context.Context, k tp, st *partState) error {
	sp := st.open
	if sp.replay != nil {
		if sp.last >= sp.replay.Last {
			return w.flush(ctx, k, st)
		}
	} else if sp.accepted()+len(sp.quarantined) >= w.Spec.MaxRows {
		return w.flush(ctx, k, st)
	}
	if sp.rows.n >= sp.rowGroupRows {
		return sp.endGroup() // a row group of the file: encoded, its decoded records let go
	}
	return nil
}

// moveLast moves the last row of from to to.
func moveLast(from, to *rows) {
	i := from.n - 1
	for name, d := range from.cols {
		t := to.cols[name]
		t.Null, t.Num, t.Str = append(t.Null, d.Null[i]), append(t.Num, d.Num[i]), append(t.Str, d.Str[i])
	}
	to.n++
	from.n--
	from.truncate()
}

// flush writes the partition's open range (manifest, then files) and commits past it.
func (w *Worker) flush(ctx context.Context, k tp, st *partState) error {
	sp := st.open
	if sp == nil {
		return nil
	}
	m, data, q, err := sp.encode(w.Spec.Dataset, k.topic, k.p)
	if err != nil {
		return err
	}
	if sp.replay != nil && (m.DataSHA256 != sp.replay.DataSHA256 || m.QuarantineSHA != sp.replay.QuarantineSHA) {
		return fmt.Errorf("%w: %s/%d offsets %d..%d rebuilt with other content than its manifest records", errConflict, k.topic, k.p, m.First, m.Last)
	}
	st.open, st.skipTo = nil, m.Last
	st.maxEvent = max(st.maxEvent, m.MaxEvent)
	if st.firstDay == "" || (m.Day != "" && !m.Late && m.Day < st.firstDay) {
		st.firstDay = m.Day
	}
	// The range's writes go to the partition's queue (in order; consuming goes on meanwhile).
	w.queueFor(k) <- job{m: m, data: data, q: q, wm: watermark{MaxEvent: st.maxEvent, FirstDay: st.firstDay, Next: m.Last + 1}}
	return w.failed()
}

// A job is one range's writes: manifest, files, watermark, then the commit.
type job struct {
	m       Manifest
	data, q []byte
	wm      watermark
}

type queue struct {
	jobs chan job
	done chan struct{}
}

// queueFor returns the partition's write queue, starting its writer.
func (w *Worker) queueFor(k tp) chan<- job {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queues[k]
	if q == nil {
		q = &queue{jobs: make(chan job, 4), done: make(chan struct{})}
		w.queues[k] = q
		go w.writer(k, q)
	}
	return q.jobs
}

// writer does a partition's writes in order. After a failure it writes nothing more (the
// worker exits with the error; a restart resumes from the manifests).
func (w *Worker) writer(k tp, q *queue) {
	defer close(q.done)
	ctx := context.WithoutCancel(w.ctx) // a graceful stop drains the queue
	for j := range q.jobs {
		if w.failed() != nil {
			continue
		}
		err := write(ctx, w.Store, j.m, j.data, j.q)
		if err == nil {
			err = w.putWatermark(ctx, k, j.wm)
		}
		if err != nil {
			w.fail(err)
			continue
		}
		w.Metrics.Files.WithLabelValues(w.Spec.Dataset).Inc()
		// The main loop commits past the range (a commit can wait on a rebalance, which waits
		// on this queue being drained: it must not run here).
		w.mu.Lock()
		w.completed[k] = j.m.Last + 1
		w.mu.Unlock()
	}
}

// commit commits past the ranges written since the last call; a failure (the partition
// moved) is safe: the next owner finds the manifests.
func (w *Worker) commit(ctx context.Context) {
	w.mu.Lock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k, next := range w.completed {
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.topic][k.p] = kgo.EpochOffset{Epoch: -1, Offset: next}
	}
	clear(w.completed)
	w.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	w.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			w.Log.Warn("commit", "error", err)
		}
	})
}

// drain closes the partitions' queues and waits for their writes.
func (w *Worker) drain(keys []tp) {
	var qs []*queue
	w.mu.Lock()
	for _, k := range keys {
		if q := w.queues[k]; q != nil {
			close(q.jobs)
			qs = append(qs, q)
			delete(w.queues, k)
		}
	}
	w.mu.Unlock()
	for _, q := range qs {
		<-q.done
	}
}

func (w *Worker) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writeErr == nil {
		w.writeErr = err
	}
}

func (w *Worker) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeErr
}

// flushIdle writes ranges that had no record for FlushIdle.
func (w *Worker) flushIdle(ctx context.Context) error {
	w.mu.Lock()
	var due []tp
	for k, st := range w.parts {
		if sp := st.open; sp != nil && sp.replay == nil && time.Since(sp.lastRecord) >= w.Spec.FlushIdle.Duration {
			due = append(due, k)
		}
	}
	w.mu.Unlock()
	for _, k := range due {
		if err := w.flush(ctx, k, w.state(k)); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) filesExist(ctx context.Context, m Manifest) bool {
	for _, key := range []string{m.DataKey, m.QuarantineKey} {
		if key == "" {
			continue
		}
		if _, err := w.Store.Head(ctx, key); err != nil {
			return false
		}
	}
	return true
}

func (w *Worker) lag(p kgo.FetchTopicPartition) {
	st := w.state(tp{p.Topic, p.Partition})
	next := st.skipTo + 1
	if st.open != nil {
		next = st.open.first
	}
	behind := max(0, p.HighWatermark-next)
	st.behind = behind > 0
	w.Metrics.LagRecords.WithLabelValues(w.Spec.Dataset, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(behind))
}

func (w *Worker) lagSeconds() {
	w.mu.Lock()
	defer w.mu.Unlock()
	worst := 0.0
	for _, st := range w.parts {
		if st.behind && !st.lastTimestamp.IsZero() {
			worst = max(worst, time.Since(st.lastTimestamp).Seconds())
		}
	}
	w.Metrics.LagSeconds.WithLabelValues(w.Spec.Dataset).Set(worst)
}

// Watermarks and closed days.

type watermark struct {
	MaxEvent int64  `json:"max_event_us"`
	FirstDay string `json:"first_day,omitempty"`
	Next     int64  `json:"next_offset"`
}

func watermarkKey(ds, topic string, p int32) string {
	return fmt.Sprintf("ingest/%s/watermarks/%s/%d.json", ds, topic, p)
}

func closedKey(ds, day string) string { return fmt.Sprintf("ingest/%s/closed/%s.json", ds, day) }

func (w *Worker) putWatermark(ctx context.Context, k tp, next watermark) error {
	prev := watermark{}
	if raw, _, err := objstore.ReadAll(ctx, w.Store, watermarkKey(w.Spec.Dataset, k.topic, k.p)); err == nil {
		_ = json.Unmarshal(raw, &prev)
	}
	wm := watermark{MaxEvent: max(prev.MaxEvent, next.MaxEvent), FirstDay: prev.FirstDay, Next: next.Next}
	if wm.FirstDay == "" || (next.FirstDay != "" && next.FirstDay < wm.FirstDay) {
		wm.FirstDay = next.FirstDay
	}
	return objstore.PutJSON(ctx, w.Store, watermarkKey(w.Spec.Dataset, k.topic, k.p), wm)
}

func (w *Worker) loadClosed(ctx context.Context) error {
	objs, err := w.Store.List(ctx, fmt.Sprintf("ingest/%s/closed/", w.Spec.Dataset))
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	newest := ""
	for _, o := range objs {
		day := strings.TrimSuffix(o.Key[strings.LastIndex(o.Key, "/")+1:], ".json")
		w.closed[day] = true
		newest = max(newest, day)
	}
	// Whichever worker closed it: the freshness metric holds after a restart too.
	if t, err := time.Parse(time.DateOnly, newest); err == nil {
		w.Metrics.Newest.WithLabelValues(w.Spec.Dataset).Set(float64(t.Unix()))
	}
	return nil
}

func (w *Worker) isClosed(day string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed[day]
}

// closeDays closes every day all partitions of the topics have moved past (by event time,
// AllowedLateness beyond its end): its marker is written once (whichever worker gets there
// first), and only that write fires the trigger.
func (w *Worker) closeDays(ctx context.Context, adm *kadm.Client) error {
	if err := w.loadClosed(ctx); err != nil {
		return err
	}
	details, err := adm.ListTopics(ctx, w.Spec.Topics...)
	if err != nil {
		return err
	}
	minEvent, first := int64(-1), ""
	for _, t := range w.Spec.Topics {
		d, ok := details[t]
		if !ok || d.Err != nil {
			return fmt.Errorf("topic %s: not found", t)
		}
		for p := range d.Partitions {
			raw, _, err := objstore.ReadAll(ctx, w.Store, watermarkKey(w.Spec.Dataset, t, p))
			if errors.Is(err, objstore.ErrNotFound) {
				return nil // a partition with nothing written yet: no day can close
			}
			if err != nil {
				return err
			}
			var wm watermark
			if err := json.Unmarshal(raw, &wm); err != nil {
				return err
			}
			if minEvent < 0 || wm.MaxEvent < minEvent {
				minEvent = wm.MaxEvent
			}
			if wm.FirstDay != "" && (first == "" || wm.FirstDay < first) {
				first = wm.FirstDay
			}
		}
	}
	if first == "" {
		return nil
	}
	day, err := time.Parse(time.DateOnly, first)
	if err != nil {
		return err
	}
	for ; day.AddDate(0, 0, 1).Add(w.Spec.AllowedLateness.Duration).UnixMicro() <= minEvent; day = day.AddDate(0, 0, 1) {
		d := day.Format(time.DateOnly)
		if w.isClosed(d) {
			continue
		}
		body, _ := json.Marshal(map[string]any{"day": d, "closed_at": time.Now().UTC(), "by": w.Spec.Group})
		_, err := w.Store.Put(ctx, closedKey(w.Spec.Dataset, d), body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
		w.mu.Lock()
		w.closed[d] = true
		w.mu.Unlock()
		w.Metrics.Newest.WithLabelValues(w.Spec.Dataset).Set(float64(day.Unix()))
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			continue // another worker closed it (and triggered)
		}
		if err != nil {
			return err
		}
		w.Log.Info("partition closed", "dataset", w.Spec.Dataset, "day", d)
		if w.Spec.Trigger.OnNewPartition && w.OnClosed != nil {
			result := "started"
			if err := w.OnClosed(ctx, d); err != nil {
				result = "error"
				if errors.Is(err, ErrBusy) {
					result = "busy"
				}
				w.Log.Warn("trigger", "day", d, "error", err)
			}
			w.Metrics.Triggers.WithLabelValues(w.Spec.Dataset, result).Inc()
		}
	}
	return nil
}

// ErrBusy is OnClosed's error when the model already has a run in progress (the starter's
// refusal of a second run is one).
var ErrBusy = pipeline.ErrRunInProgress

// oversizedKept is how much of an oversized record its quarantine entry keeps.
const oversizedKept = 1024

// oversized is the quarantine entry of a record over max bytes: its first bytes (at most
// oversizedKept, and never more than it has, whatever max is) and its size.
func oversized(r *kgo.Record, max int) quarantined {
	head := r.Value[:min(len(r.Value), oversizedKept)]
	q := quarantine(r.Topic, r.Partition, r.Offset, r.Key, head, problem{Reason: fmt.Sprintf("oversized: %d bytes, max_record_bytes %d (the first %d kept)",
		len(r.Value), max, len(head))})
	q.Bytes = len(r.Value)
	return q
}
