package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
)

func testContract() contract.Contract {
	zero := 0.0
	return contract.Contract{MaxBadRowShare: 0.5, Columns: []contract.Column{
		{Name: "id", Type: contract.TypeInt, Role: contract.RoleEntityKey},
		{Name: "date", Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: "v", Type: contract.TypeDouble, Role: contract.RoleFeature, Min: &zero}}}
}

// startKafka starts `driftline kafka-dev` as its own process and returns its address.
func startKafka(t *testing.T, topics string) string {
	t.Helper()
	bin := stack.BuildDriftlineDev(t)
	port := stack.FreePort(t)
	stack.NewService(t, "kafka-dev", "", nil, bin, "kafka-dev", "--port", strconv.Itoa(port), "--topics", topics)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stack.WaitPort(t, addr, 30*time.Second)
	return addr
}

func testSpec(broker, topic string) Spec {
	s := Spec{APIVersion: "driftline.dev/v1", Kind: "IngestSpec", Dataset: "events", Brokers: []string{broker}, Topics: []string{topic},
		Group: "g-" + topic, MaxRows: 200, MaxRecordBytes: 1024, Contract: testContract(), EventTime: "date"}
	s.FlushIdle.Duration, s.AllowedLateness.Duration = 300*time.Millisecond, time.Hour
	s.defaults()
	return s
}

func produce(t *testing.T, broker, topic string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

func record(p int32, id int, day string, v any) *kgo.Record {
	b, _ := json.Marshal(map[string]any{"id": id, "date": day, "v": v})
	return &kgo.Record{Partition: p, Key: []byte(strconv.Itoa(id)), Value: b}
}

// manifests reads every manifest of the dataset, by topic-partition in offset order.
func manifests(t *testing.T, b objstore.Bucket, ds string) map[string][]Manifest {
	t.Helper()
	objs, err := b.List(context.Background(), "ingest/"+ds+"/manifests/")
	require.NoError(t, err)
	out := map[string][]Manifest{}
	for _, o := range objs {
		m, err := readManifest(context.Background(), b, o.Key)
		require.NoError(t, err)
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		out[k] = append(out[k], m)
	}
	for _, ms := range out {
		sort.Slice(ms, func(i, j int) bool { return ms[i].First < ms[j].First })
	}
	return out
}

// covered counts the records the manifests account for.
func covered(ms map[string][]Manifest) (accepted, quarantined int) {
	for _, l := range ms {
		for _, m := range l {
			accepted, quarantined = accepted+m.Accepted, quarantined+m.Quarantined
		}
	}
	return
}

// A stream with bad records, three partitions, records of three days: every good record lands
// once in its event day's partition of the dataset, every bad one in quarantine with its
// topic, partition, offset and reason (malformed JSON, a wrong type, a missing field, an
// oversized message, a contract breach); accepted + quarantined = consumed; the manifests
// cover each partition's offsets without a gap or an overlap; a file holds one day; after
// the days close, a late record of a closed day goes to the late partition, counted, and the
// day's files are unchanged.
func TestIngestEveryRecordOnceAndBadOnesQuarantined(t *testing.T) {
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	broker := startKafka(t, "ev:3")
	days := []string{"2026-11-01", "2026-11-02", "2026-11-03"}
	var recs []*kgo.Record
	good := map[int]string{}
	id := 0
	for _, day := range days {
		for p := range int32(3) {
			for range 150 {
				recs = append(recs, record(p, id, day, float64(id%17)))
				good[id] = day
				id++
			}
		}
	}
	bad := []*kgo.Record{
		{Partition: 0, Value: []byte(`{"id": 1, "date": "2026-11-03", "v": `)},                                               // malformed
		{Partition: 1, Value: []byte(`{"id": "x", "date": "2026-11-03", "v": 1}`)},                                           // wrong type
		{Partition: 2, Value: []byte(`{"date": "2026-11-03", "v": 1}`)},                                                      // missing id
		{Partition: 0, Value: []byte(`{"id": 5, "date": "2026-11-03", "v": -1}`)},                                            // below min
		{Partition: 1, Value: []byte(`{"id": 6, "date": "soon", "v": 1}`)},                                                   // no event time
		{Partition: 2, Value: []byte(`{"id": 7, "date": "2026-11-03", "v": 1, "pad": "` + strings.Repeat("x", 2000) + `"}`)}, // oversized
		{Partition: 0, Value: []byte{0xff, 0xfe}},                                                                            // not UTF-8
		{Partition: 1, Value: []byte(`{"id": 9007199254740993, "date": "2026-11-03", "v": 1}`)},                              // 2^53+1: a float64 rounds it
	}
	recs = append(recs, bad...)
	// Out of order on partition 2: days interleaved record by record.
	for j := range 30 {
		day := days[j%3]
		recs = append(recs, record(2, id, day, 1.0))
		good[id] = day
		id++
	}
	produce(t, broker, "ev", recs)

	reg := prometheus.NewRegistry()
	sp := testSpec(broker, "ev")
	sp.Trigger.OnNewPartition = true
	var triggered []string
	var tmu sync.Mutex
	w := &Worker{Spec: sp, Store: store, Metrics: NewMetrics(reg), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnClosed: func(_ context.Context, day string) error {
			tmu.Lock()
			defer tmu.Unlock()
			triggered = append(triggered, day)
			return nil
		}}
	stop := runUntilCovered(t, w, store, len(recs))

	ms := manifests(t, store, "events")
	accepted, quarantinedN := covered(ms)
	require.Equal(t, len(good), accepted)
	require.Equal(t, len(bad), quarantinedN)
	for k, l := range ms {
		next := int64(0)
		for _, m := range l {
			require.Equal(t, next, m.First, "%s: no gap, no overlap", k)
			next = m.Last + 1
			require.LessOrEqual(t, m.Accepted+m.Quarantined, 200)
		}
	}
	// The dataset as the loop reads it: every good record once, in its day.
	snap, err := dataset.TakeSnapshot(ctx, store, "events", "check", mustDay(days[0]), mustDay(days[2]))
	require.NoError(t, err)
	seen := map[int]string{}
	require.NoError(t, dataset.ScanSource(ctx, store, snap, testContract(), dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			require.True(t, bt.Accepted[r])
			i := int(bt.Cols["id"].Num[r])
			_, dup := seen[i]
			require.False(t, dup, "record %d twice", i)
			seen[i] = bt.Date
			require.Equal(t, bt.Cols["date"].Str[r], bt.Date, "partitioned by event time")
		}
		return nil
	}))
	require.Equal(t, good, seen)
	// Quarantine: each bad record with its position and reason.
	var reasons []string
	for _, q := range quarantinedRecords(t, store, "events") {
		require.Equal(t, "ev", q.Topic)
		require.GreaterOrEqual(t, q.Offset, int64(450))
		reasons = append(reasons, q.Field+": "+q.Reason)
	}
	sort.Strings(reasons)
	require.Len(t, reasons, len(bad))
	joined := strings.Join(reasons, "\n")
	for _, want := range []string{": malformed JSON", "id: want an integer, got a string", "id: null value (null)", "v: below min 0 (below_min)",
		"date: event time is not a date", "id: integer 9007199254740993 beyond ±2^53", ": oversized: 2050 bytes, max_record_bytes 1024", ": malformed JSON: invalid character"} {
		require.Contains(t, joined, want)
	}
	require.Equal(t, float64(len(good)), testutil.ToFloat64(w.Metrics.Records.WithLabelValues("events", "accepted")))
	require.Equal(t, float64(len(bad)), testutil.ToFloat64(w.Metrics.Records.WithLabelValues("events", "quarantined")))

	// Close the first days: records of 2026-11-05 on every partition move the watermark past
	// 11-03's end plus the hour of lateness; then a late record of 11-01.
	etags := map[string]string{}
	objs, err := store.List(ctx, "datasets/events/")
	require.NoError(t, err)
	for _, o := range objs {
		etags[o.Key] = o.ETag
	}
	var closing []*kgo.Record
	for p := range int32(3) {
		closing = append(closing, record(p, 100000+int(p), "2026-11-05", 1.0))
	}
	produce(t, broker, "ev", closing)
	require.Eventually(t, func() bool { return w.isClosed("2026-11-03") }, 30*time.Second, 100*time.Millisecond)
	require.False(t, w.isClosed("2026-11-04") && !w.isClosed("2026-11-03"))
	// Each closed day started one run, whichever worker closed it; a second worker of the
	// group finds the markers and starts none.
	w2 := &Worker{Spec: sp, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnClosed: func(context.Context, string) error { t.Error("a second trigger"); return nil }}
	w2.parts, w2.closed = map[tp]*partState{}, map[string]bool{}
	adm := kadm.NewClient(w.cl)
	require.NoError(t, w2.closeDays(ctx, adm))
	require.Equal(t, float64(mustDay("2026-11-03").Unix()), testutil.ToFloat64(w2.Metrics.Newest.WithLabelValues("events")),
		"the newest complete partition, from the markers another worker wrote")
	tmu.Lock()
	require.Equal(t, []string{"2026-11-01", "2026-11-02", "2026-11-03"}, triggered[:3])
	tmu.Unlock()
	produce(t, broker, "ev", []*kgo.Record{record(1, 200000, "2026-11-01", 2.0)})
	require.Eventually(t, func() bool {
		late, _ := store.List(ctx, "late/events/dt=2026-11-01/")
		return len(late) == 1
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(w.Metrics.Records.WithLabelValues("events", "late")))
	after, err := store.List(ctx, "datasets/events/dt=2026-11-01/")
	require.NoError(t, err)
	for _, o := range after {
		require.Equal(t, etags[o.Key], o.ETag, "%s unchanged", o.Key)
	}
	require.Len(t, after, countPrefix(etags, "datasets/events/dt=2026-11-01/"), "no file added to a closed day")
	stop()
}

// runUntilCovered runs the worker until the manifests of dataset events cover n records and
// returns the function that stops it (and checks it ended without an error).
func runUntilCovered(t *testing.T, w *Worker, store objstore.Bucket, n int) func() {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, func() bool {
		a, q := covered(manifests(t, store, "events"))
		return a+q == n
	}, 60*time.Second, 200*time.Millisecond)
	return func() {
		stop()
		require.NoError(t, <-done)
	}
}

// quarantinedRecords reads every record the worker quarantined for the dataset.
func quarantinedRecords(t *testing.T, store objstore.Bucket, ds string) []quarantined {
	t.Helper()
	objs, err := store.List(context.Background(), "quarantine/"+ds+"/ingest/")
	require.NoError(t, err)
	var out []quarantined
	for _, o := range objs {
		raw, _, err := objstore.ReadAll(context.Background(), store, o.Key)
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var q quarantined
			require.NoError(t, json.Unmarshal([]byte(line), &q))
			out = append(out, q)
		}
	}
	return out
}

func countPrefix(m map[string]string, prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func mustDay(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// A file's accepted records are encoded a row group at a time: the decoded records a
// partition holds never exceed row_group_rows, the file has its row groups of that size, and
// a replay (the manifest written, the file lost in a crash) rebuilds it byte for byte.
func TestRowGroupsStreamedAndReplayedByteForByte(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMem()
	sp := testSpec("unused:9092", "rg")
	sp.MaxRows, sp.RowGroupRows = 1000, 128
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		recs[i] = record(0, i, "2026-11-01", float64(i%13))
		recs[i].Topic, recs[i].Offset = "rg", int64(i)
	}
	feed := func() *Worker {
		w := &Worker{Spec: sp, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		require.NoError(t, w.setup(ctx))
		for _, r := range recs {
			require.NoError(t, w.handle(ctx, r))
			if st := w.parts[tp{"rg", 0}]; st.open != nil {
				require.LessOrEqual(t, st.open.rows.n, sp.RowGroupRows, "decoded records held at offset %d", r.Offset)
			}
		}
		w.drain([]tp{{"rg", 0}})
		require.NoError(t, w.failed())
		return w
	}
	feed()
	ms, err := Manifests(ctx, store, "events")
	require.NoError(t, err)
	require.Len(t, ms, 1)
	m := ms[0]
	require.Equal(t, 1000, m.Accepted)
	require.Equal(t, 128, m.RowGroupRows)
	first, _, err := objstore.ReadAll(ctx, store, m.DataKey)
	require.NoError(t, err)
	pf, err := parquet.OpenFile(bytes.NewReader(first), int64(len(first)))
	require.NoError(t, err)
	var sizes []int64
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	require.Equal(t, []int64{128, 128, 128, 128, 128, 128, 128, 104}, sizes)

	// The crash: the manifest is there, the file is not. The next owner rebuilds the same bytes.
	require.NoError(t, store.Delete(ctx, m.DataKey))
	feed()
	again, _, err := objstore.ReadAll(ctx, store, m.DataKey)
	require.NoError(t, err)
	require.Equal(t, first, again)
	// A replay under another row_group_rows still rebuilds the recorded file (the manifest's size).
	require.NoError(t, store.Delete(ctx, m.DataKey))
	sp.RowGroupRows = 300
	feed()
	again, _, err = objstore.ReadAll(ctx, store, m.DataKey)
	require.NoError(t, err)
	require.Equal(t, first, again)
}
