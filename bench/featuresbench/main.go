// Command featuresbench measures the feature store (bench/features.sh): online reads of a
// 20-feature vector from the embedded store and from Redis (p50/p99 latency, reads/s with two
// readers), writes to each (rows/s), and the point-in-time join of N feature rows with M
// entity rows (rows/s, peak RSS). With -peer-data DIR it also writes the join's inputs as
// raw little-endian arrays for the pandas peer (bench/features_pandas.py) and as Parquet for
// the DuckDB peer (bench/duckdb/asof.mjs).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/spec"
)

func main() {
	mode := flag.String("mode", "online", "online, join, materialize; with S3 (BENCH_S3_*): retrieve-data then retrieve, chunks-data then chunks-s3")
	days := flag.Int("days", 1, "chunks-s3: days materialized (one chunk a day)")
	redisAddr := flag.String("redis", "", "Redis host:port for the online mode (empty: embedded only)")
	keys := flag.Int("keys", 100_000, "online: entities stored")
	reads := flag.Int("reads", 200_000, "online: reads per store")
	nRows := flag.Int("rows", 10_000_000, "join: feature rows")
	nEnts := flag.Int("entities", 1_000_000, "join: entity rows")
	peer := flag.String("peer-data", "", "join: write the inputs here for the pandas peer")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	stop, err := benchutil.CPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "featuresbench:", err)
		os.Exit(1)
	}
	switch *mode {
	case "online":
		err = online(*redisAddr, *keys, *reads)
	case "join":
		err = join(*nRows, *nEnts, *peer)
	case "materialize":
		err = materialize(*redisAddr, *nRows)
	case "retrieve-data":
		err = retrieveData(*nRows, *nEnts)
	case "retrieve":
		err = retrieve()
	case "chunks-data":
		err = chunksData()
	case "chunks-s3":
		err = chunksS3(*days)
	default:
		err = fmt.Errorf("mode %q", *mode)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "featuresbench:", err)
		os.Exit(1)
	}
}

const width = 20

func repo() features.Repo {
	v := features.View{Name: "v", Entity: "e", OnlineExpiry: spec.Duration{Duration: 24 * time.Hour}}
	svc := features.Service{Name: "s"}
	for j := range width {
		name := "f" + strconv.Itoa(j)
		v.Features = append(v.Features, features.Feature{Name: name, Op: features.OpValue, Column: name})
		svc.Features = append(svc.Features, "v:"+name)
	}
	return features.Repo{Entities: []features.Entity{{Name: "e", Keys: []string{"k"}}}, Views: []features.View{v}, Services: []features.Service{svc}}
}

func online(redisAddr string, keys, reads int) error {
	ctx := context.Background()
	r := repo()
	now := time.Now()
	rows := make([]features.FeatureRow, keys)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rows {
		vals := make([]float64, width)
		for j := range vals {
			vals[j] = rng.Float64()
		}
		ev := now.Add(-time.Hour).UnixMicro()
		rows[i] = features.FeatureRow{Key: "entity-" + strconv.Itoa(i), Event: ev, Created: ev, Values: vals}
	}
	dir, err := os.MkdirTemp("", "featuresbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stores := []struct {
		name string
		open func() (features.Online, error)
	}{{"embedded (bbolt)", func() (features.Online, error) { return features.OpenBolt(filepath.Join(dir, "online.db")) }}}
	if redisAddr != "" {
		stores = append(stores, struct {
			name string
			open func() (features.Online, error)
		}{"redis (loopback)", func() (features.Online, error) { return features.OpenRedis(ctx, redisAddr, "bench:") }})
	}
	for _, s := range stores {
		o, err := s.open()
		if err != nil {
			return err
		}
		t0 := time.Now()
		for lo := 0; lo < len(rows); lo += 10_000 {
			if err := o.Put(ctx, "v", rows[lo:min(lo+10_000, len(rows))]); err != nil {
				return err
			}
		}
		wr := time.Since(t0)
		const readers = 2
		lat := make([][]time.Duration, readers)
		var wg sync.WaitGroup
		t1 := time.Now()
		for g := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 9))
				l := make([]time.Duration, 0, reads/readers)
				for range reads / readers {
					k := "entity-" + strconv.Itoa(rng.IntN(keys))
					s := time.Now()
					v, err := features.ReadService(ctx, o, r, "s", k, now)
					l = append(l, time.Since(s))
					if err != nil || v.Missing[0] != "" {
						panic(fmt.Sprintf("read %s: %v %v", k, err, v.Missing))
					}
				}
				lat[g] = l
			}()
		}
		wg.Wait()
		el := time.Since(t1)
		all := slices.Concat(lat...)
		slices.Sort(all)
		q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
		fmt.Printf("%-17s write %d rows of %d features: %.0f rows/s; read the %d-feature vector, %d reads by %d readers: %.0f reads/s, p50 %s, p99 %s, max %s\n",
			s.name, keys, width, float64(keys)/wr.Seconds(), width, len(all), readers, float64(len(all))/el.Seconds(), q(0.5), q(0.99), all[len(all)-1])
		o.Close()
	}
	return nil
}

func join(n, m int, peer string) error {
	rng := rand.New(rand.NewPCG(3, 4))
	keys := m / 4 // four entity rows per key
	const day = int64(24 * time.Hour / time.Microsecond)
	rows := make([]features.FeatureRow, n)
	for i := range rows {
		ev := int64(rng.IntN(365)) * day
		created := ev
		if rng.IntN(10) == 0 {
			created += int64(rng.IntN(30)) * day // backfills
		}
		rows[i] = features.FeatureRow{Key: "k" + strconv.Itoa(rng.IntN(keys)), Event: ev, Created: created, Values: []float64{float64(i)}}
	}
	ents := make([]features.EntityRow, m)
	for i := range ents {
		ents[i] = features.EntityRow{Key: "k" + strconv.Itoa(rng.IntN(keys)), At: int64(rng.IntN(365*24)) * day / 24}
	}
	if peer != "" {
		if err := writePeer(peer, rows, ents); err != nil {
			return err
		}
	}
	runtime.GC()
	t0 := time.Now()
	out := features.AsOf(ents, rows, 30*24*time.Hour)
	el := time.Since(t0)
	found := 0
	for _, o := range out {
		if o.Found {
			found++
		}
	}
	fmt.Printf("point-in-time join: %d feature rows x %d entity rows (%d keys, 30-day lookback): %.2f s, %.2fM entity rows/s, %.2fM feature rows/s, %d matched; peak RSS %s\n",
		n, m, keys, el.Seconds(), float64(m)/el.Seconds()/1e6, float64(n)/el.Seconds()/1e6, found, benchutil.PeakRSS())
	return nil
}

// writePeer writes key ids (int64), event and created (int64 µs), value (float64) of the
// feature rows and key ids and times of the entity rows, little-endian.
func writePeer(dir string, rows []features.FeatureRow, ents []features.EntityRow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	key := func(k string) int64 { v, _ := strconv.ParseInt(k[1:], 10, 64); return v }
	write := func(name string, n int, at func(i int) []int64) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 0, 1<<20)
		for i := range n {
			for _, v := range at(i) {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
			}
			if len(buf) > 1<<20-64 {
				if _, err := f.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		_, err = f.Write(buf)
		return err
	}
	if err := write("features.bin", len(rows), func(i int) []int64 {
		r := rows[i]
		return []int64{key(r.Key), r.Event, r.Created, int64(r.Values[0])}
	}); err != nil {
		return err
	}
	if err := write("entities.bin", len(ents), func(i int) []int64 { return []int64{key(ents[i].Key), ents[i].At} }); err != nil {
		return err
	}
	type featureRow struct {
		Key     int64 `parquet:"key"`
		Event   int64 `parquet:"event"`
		Created int64 `parquet:"created"`
		Value   int64 `parquet:"value"`
	}
	type entityRow struct {
		Key int64 `parquet:"key"`
		At  int64 `parquet:"at"`
	}
	fr := make([]featureRow, len(rows))
	for i, r := range rows {
		fr[i] = featureRow{key(r.Key), r.Event, r.Created, int64(r.Values[0])}
	}
	if err := parquet.WriteFile(filepath.Join(dir, "features.parquet"), fr); err != nil {
		return err
	}
	er := make([]entityRow, len(ents))
	for i, e := range ents {
		er[i] = entityRow{key(e.Key), e.At}
	}
	return parquet.WriteFile(filepath.Join(dir, "entities.parquet"), er)
}

// materialize computes a view (a 7-day rolling sum and the value) over n source rows of
// n/100 keys (100 daily events each) and writes the latest row of each key to each store.
func materialize(redisAddr string, n int) error {
	ctx := context.Background()
	const day = int64(24 * time.Hour / time.Microsecond)
	keys := max(n/100, 1)
	v := features.View{Name: "v", Entity: "e", Lookback: spec.Duration{Duration: 30 * 24 * time.Hour}, Features: []features.Feature{
		{Name: "units", Op: features.OpValue, Column: "units"},
		{Name: "units_7d", Op: features.OpRollingSum, Column: "units", Window: spec.Duration{Duration: 7 * 24 * time.Hour}}}}
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]features.SourceRow, n)
	for i := range src {
		ev := int64(i/keys) * day
		src[i] = features.SourceRow{Key: "k" + strconv.Itoa(i%keys), Event: ev, Created: ev + day, Cols: []float64{float64(rng.IntN(50))}}
	}
	dir, err := os.MkdirTemp("", "featuresbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stores := map[string]func() (features.Online, error){"embedded (bbolt)": func() (features.Online, error) { return features.OpenBolt(filepath.Join(dir, "m.db")) }}
	if redisAddr != "" {
		stores["redis (loopback)"] = func() (features.Online, error) { return features.OpenRedis(ctx, redisAddr, "benchm:") }
	}
	for _, name := range []string{"embedded (bbolt)", "redis (loopback)"} {
		open, ok := stores[name]
		if !ok {
			continue
		}
		o, err := open()
		if err != nil {
			return err
		}
		asOf := time.UnixMicro(int64(n/keys) * day)
		t0 := time.Now()
		written, err := features.Materialize(ctx, o, v, slices.Clone(src), asOf)
		if err != nil {
			return err
		}
		el := time.Since(t0)
		fmt.Printf("materialize %-17s %d source rows of %d keys: %.2f s, %.2fM source rows/s, %d keys written\n", name, n, keys, el.Seconds(), float64(n)/el.Seconds()/1e6, written)
		o.Close()
	}
	fmt.Printf("peak RSS %s\n", benchutil.PeakRSS())
	return nil
}
