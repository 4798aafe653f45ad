package testsuite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/spec"
)

// The ingest worker killed (SIGKILL) at random moments while a producer writes, with a second
// worker joining the group and leaving mid-stream: afterwards the dataset holds every record
// exactly once (by its key), each file is as first written (its manifest's SHA-256; no file
// was ever seen with other content), the manifests cover each partition's offsets without a
// gap or an overlap, and the loop's scan reads every row. INGEST_KILLS (8) and INGEST_RECORDS
// (100,000); make chaos runs 50 kills and 1,000,000 records.
func TestIngestExactlyOnceUnderKillsAndRebalance(t *testing.T) {
	kills, total := envInt("INGEST_KILLS", 8), envInt("INGEST_RECORDS", 100_000)
	ctx := context.Background()
	cfg := stack.StartMinIO(t)
	store, err := s3store.New(ctx, cfg)
	require.NoError(t, err)
	bin := stack.BuildDriftlineDev(t)
	kport := stack.FreePort(t)
	stack.NewService(t, "kafka-dev", "", nil, bin, "kafka-dev", "--port", strconv.Itoa(kport), "--topics", "sales:4")
	broker := fmt.Sprintf("127.0.0.1:%d", kport)
	stack.WaitPort(t, broker, 30*time.Second)
	root, err := stack.RepoRoot()
	require.NoError(t, err)
	specPath := filepath.Join(t.TempDir(), "ingest.yaml")
	require.NoError(t, os.WriteFile(specPath, []byte(fmt.Sprintf(`apiVersion: driftline.dev/v1
kind: IngestSpec
dataset: retail_demand
model_spec: %s
brokers: [%s]
topics: [sales]
group: chaos
max_rows: 5000
flush_idle: 500ms
session_timeout: 2s
`, filepath.Join(root, "examples/demand.yaml"), broker)), 0o600))
	env := []string{"DRIFTLINE_S3_ENDPOINT=" + cfg.Endpoint, "DRIFTLINE_S3_ACCESS_KEY=" + cfg.AccessKey, "DRIFTLINE_S3_SECRET_KEY=" + cfg.SecretKey,
		"DRIFTLINE_S3_BUCKET=" + cfg.Bucket}
	worker := func(name string) *stack.Service {
		return stack.NewService(t, name, root, env, bin, "ingest", "--spec", specPath, "--metrics", fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t)),
			"--kafka-log", envStr("INGEST_KAFKA_LOG", "info"), "--instance-id", name)
	}
	w1 := worker("ingest-1")

	// Watch the files while the campaign runs: a key must never be seen with two contents.
	seen := map[string]string{}
	var seenMu sync.Mutex
	watch := func() {
		objs, err := store.List(ctx, "datasets/retail_demand/")
		if err != nil {
			return
		}
		seenMu.Lock()
		defer seenMu.Unlock()
		for _, o := range objs {
			if prev, ok := seen[o.Key]; ok {
				require.Equal(t, prev, o.ETag, "%s changed after it was first written", o.Key)
			}
			seen[o.Key] = o.ETag
		}
	}
	// The producer: records of the demand contract, 10,000 store-items a day, in batches.
	const perDay = 10_000
	day0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	produced := make(chan error, 1)
	// The stream lasts as long as the kills (about 0.95 s apart), so they land mid-stream.
	pause := time.Duration(kills) * 950 * time.Millisecond / time.Duration((total+1999)/2000)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("sales"))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for start := 0; start < total; start += 2000 {
			var recs []*kgo.Record
			for i := start; i < min(total, start+2000); i++ {
				recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i % perDay)), Value: salesRecord(i, perDay, day0)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(pause)
		}
		produced <- nil
	}()
	rng := rand.New(rand.NewPCG(uint64(total), uint64(kills)))
	var w2 *stack.Service
	for k := range kills {
		time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		watch()
		w1.Kill()
		w1.Start()
		switch k {
		case kills / 3:
			w2 = worker("ingest-2") // a second worker joins the group
		case 2 * kills / 3:
			w2.Stop() // and leaves
		}
	}
	require.NoError(t, <-produced)
	// Wait for the rest; a worker that makes no progress for 90 s is stalled: its goroutines
	// are dumped into its log (where it waits) and the test fails naming the partitions.
	last, lastN := time.Now(), -1
	for {
		watch()
		ms := allManifests(t, store)
		n, per := 0, map[string]int64{}
		for k, l := range ms {
			for _, m := range l {
				n += m.Accepted + m.Quarantined
				per[k] = m.Last + 1
			}
		}
		if n >= total {
			require.Equal(t, total, n, "every record accounted for")
			break
		}
		if n != lastN {
			last, lastN = time.Now(), n
		}
		if time.Since(last) > 90*time.Second {
			w1.Dump()
			t.Fatalf("stalled: %d of %d records written, none for 90 s; next offset by partition %v (goroutines in ingest-1's log)", n, total, per)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Manifests: contiguous from 0 per partition; each data file as its manifest records.
	for k, l := range allManifests(t, store) {
		next := int64(0)
		for _, m := range l {
			require.Equal(t, next, m.First, "%s: no gap or overlap at %d", k, m.First)
			require.Zero(t, m.Quarantined)
			next = m.Last + 1
			raw, _, err := objstore.ReadAll(ctx, store, m.DataKey)
			require.NoError(t, err)
			sum := sha256.Sum256(raw)
			require.Equal(t, m.DataSHA256, hex.EncodeToString(sum[:]), m.DataKey)
		}
	}
	// The loop reads it: every record once.
	sp, err := spec.Load(filepath.Join(root, "examples/demand.yaml"))
	require.NoError(t, err)
	days := (total + perDay - 1) / perDay
	snap, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "check", day0, day0.AddDate(0, 0, days-1))
	require.NoError(t, err)
	got := make([]bool, total)
	n := 0
	require.NoError(t, dataset.ScanSource(ctx, store, snap, sp.Contract, dataset.AllDays)(func(bt *dataset.Batch) error {
		d, _ := time.Parse(time.DateOnly, bt.Date)
		base := int(d.Sub(day0).Hours()/24) * perDay
		for r := 0; r < bt.Rows; r++ {
			require.True(t, bt.Accepted[r], "row %d of %s: %v", r, bt.File, bt.Issues)
			i := base + int(bt.Cols["store_id"].Num[r]-1)*100 + int(bt.Cols["item_id"].Num[r]-1)
			require.False(t, got[i], "record %d twice (%s)", i, bt.File)
			got[i] = true
			n++
		}
		return nil
	}))
	require.Equal(t, total, n)
	t.Logf("%d records, %d kills, a second worker joined and left: %d files, every record once", total, kills, len(seen))
}

// salesRecord is record i of the demand contract: day i/perDay, store-item i%perDay.
func salesRecord(i, perDay int, day0 time.Time) []byte {
	si := i % perDay
	b, _ := json.Marshal(map[string]any{"date": day0.AddDate(0, 0, i/perDay).Format(time.DateOnly), "store_id": si/100 + 1, "item_id": si%100 + 1,
		"region": []string{"north", "south", "east", "west"}[si%4], "price": 10 + float64(si%50), "promo": si % 2, "weekday": (i / perDay) % 7,
		"temperature": 15.5, "item_popularity": 1.0, "competitor_price": 11.0, "units_sold": float64(i % 40)})
	return b
}

func allManifests(t *testing.T, b objstore.Bucket) map[string][]ingest.Manifest {
	t.Helper()
	ms, err := ingest.Manifests(context.Background(), b, "retail_demand")
	require.NoError(t, err)
	out := map[string][]ingest.Manifest{}
	for _, m := range ms { // in key order: zero-padded first offsets
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		out[k] = append(out[k], m)
	}
	return out
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
