// Command driftbench measures the drift report for rows x features of current data against a
// reference profile, and writes the same data for bench/drift_scipy.py (see bench/drift.sh).
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/benchutil"
)

// column is deterministic data: Irwin-Hall(4) samples from a 64-bit LCG, shifted for some
// features so that the report has drifted and stable features.
func column(seed uint64, n int, loc float64) []float64 {
	out := make([]float64, n)
	state := seed
	for i := range out {
		s := 0.0
		for range 4 {
			state = state*6364136223846793005 + 1442695040888963407
			s += float64(state>>11) / 9007199254740992.0
		}
		out[i] = s + loc
	}
	return out
}

func writeColumns(path string, cols [][]float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 8)
	for r := range cols[0] { // row-major, as numpy reads it
		for _, c := range cols {
			binary.LittleEndian.PutUint64(buf, math.Float64bits(c[r]))
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func main() {
	rows := flag.Int("rows", 1_000_000, "current and reference rows")
	feats := flag.Int("features", 20, "numeric features")
	dir := flag.String("dir", "", "write ref.f64 and cur.f64 here for the scipy comparison")
	reps := flag.Int("reps", 5, "timed repetitions (the median is reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run here")
	chunk := flag.Int("chunk", 0, "stream the data in chunks of this many rows (the wide-table run: memory bounded by the chunk, not the table); 0: hold every column")
	flag.Parse()
	stop, err := benchutil.CPUProfile(*cpuprofile)
	if err != nil {
		panic(err)
	}
	defer stop()
	if *chunk > 0 {
		streamed(*rows, *feats, *chunk)
		return
	}
	held(*rows, *feats, *reps, *dir)
}

// held is the run with every column in memory: the drift report timed, then the full-sample
// KS, the same work as scipy's.
func held(rows, feats, reps int, dir string) {
	names := make([]string, feats)
	ref := make([][]float64, feats)
	cur := make([][]float64, feats)
	for i := range feats {
		names[i] = fmt.Sprint("f", i)
		ref[i] = column(uint64(2*i+1), rows, 0)
		cur[i] = column(uint64(2*i+2), rows, 0.02*float64(i%4)) // a quarter of the features stay put
	}
	if dir != "" {
		if err := writeColumns(filepath.Join(dir, "ref.f64"), ref); err != nil {
			panic(err)
		}
		if err := writeColumns(filepath.Join(dir, "cur.f64"), cur); err != nil {
			panic(err)
		}
	}
	t0 := time.Now()
	prof, err := drift.NewProfile(names, ref)
	if err != nil {
		panic(err)
	}
	profTime := time.Since(t0)
	var times []time.Duration
	var rep drift.Report
	var before, after runtime.MemStats
	for range reps {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		w := drift.NewWindow(prof)
		w.AddColumns(cur, 0)
		rep = w.Report(drift.DefaultConfig())
		times = append(times, time.Since(start))
		runtime.ReadMemStats(&after)
	}
	slices.Sort(times)
	med := times[len(times)/2]
	drifted := 0
	for _, f := range rep.Features {
		if f.Drifted {
			drifted++
		}
	}
	fmt.Printf("driftline: %d rows x %d features against a profile of %d rows: median %.3f s over %d runs (min %.3f s), %.2fM rows/s, %d features drifted\n",
		rows, feats, rows, med.Seconds(), reps, times[0].Seconds(), float64(rows)/med.Seconds()/1e6, drifted)
	fmt.Printf("driftline: allocated %.1f MB per report (window state), peak RSS of the process %s (the %d MB of input columns included); profile built once in %.2f s\n",
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), benchutil.PeakRSS(), 2*rows*feats*8>>20, profTime.Seconds())
	fmt.Printf("GO_SECONDS=%.6f\n", med.Seconds())

	// The same work as scipy: the full reference against the full window, feature by feature
	// on one goroutine, copying and sorting both samples each time (ks_2samp sorts too).
	var full []time.Duration
	fullDrifted := 0
	for range max(reps/2, 1) {
		start := time.Now()
		fullDrifted = 0
		for i := range feats {
			a, b := slices.Clone(ref[i]), slices.Clone(cur[i])
			slices.Sort(a)
			slices.Sort(b)
			if drift.KS2Samp(a, b).P < 0.05/float64(feats) {
				fullDrifted++
			}
		}
		full = append(full, time.Since(start))
	}
	slices.Sort(full)
	fmed := full[len(full)/2]
	fmt.Printf("driftline full samples: KS2Samp looped over %d columns of %d vs %d rows on one goroutine: median %.3f s over %d runs, %.2fM rows/s, %d features drifted\n",
		feats, rows, rows, fmed.Seconds(), len(full), float64(rows)/fmed.Seconds()/1e6, fullDrifted)
	fmt.Printf("GO_FULL_SECONDS=%.6f\n", fmed.Seconds())
}

// lcg is column's generator as a stream: a feature's values, chunk by chunk.
type lcg struct {
	state uint64
	loc   float64
}

func (g *lcg) fill(out []float64) {
	for i := range out {
		s := 0.0
		for range 4 {
			g.state = g.state*6364136223846793005 + 1442695040888963407
			s += float64(g.state>>11) / 9007199254740992.0
		}
		out[i] = s + g.loc
	}
}

// streamed is the wide-table run: a reference of rows x feats built into a profile and a
// window of rows x feats compared with it, both generated chunk rows at a time, so the
// process holds one chunk of the table, the profile and the window's state.
func streamed(rows, feats, chunk int) {
	names, kinds := make([]string, feats), make([]string, feats)
	refGen, curGen := make([]lcg, feats), make([]lcg, feats)
	for i := range feats {
		names[i], kinds[i] = fmt.Sprint("f", i), drift.Numeric
		refGen[i], curGen[i] = lcg{state: uint64(2*i + 1)}, lcg{state: uint64(2*i + 2), loc: 0.02 * float64(i%4)}
	}
	cols := make([][]float64, feats)
	for i := range cols {
		cols[i] = make([]float64, chunk)
	}
	t0 := time.Now()
	b := drift.NewProfileBuilder(names, kinds)
	for r := 0; r < rows; r += chunk {
		n := min(chunk, rows-r)
		for i := range feats {
			refGen[i].fill(cols[i][:n])
			for j, v := range cols[i][:n] {
				b.AddNumeric(i, v, uint64(r+j))
			}
		}
	}
	prof := b.Profile()
	profTime := time.Since(t0)
	t1 := time.Now()
	w := drift.NewWindow(prof)
	part := make([][]float64, feats)
	for r := 0; r < rows; r += chunk {
		n := min(chunk, rows-r)
		for i := range feats {
			curGen[i].fill(cols[i][:n])
			part[i] = cols[i][:n]
		}
		w.AddColumns(part, uint64(r))
	}
	if path := os.Getenv("DRIFTBENCH_HEAP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			panic(err)
		}
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	rep := w.Report(drift.DefaultConfig())
	winTime := time.Since(t1)
	drifted := 0
	for _, f := range rep.Features {
		if f.Drifted {
			drifted++
		}
	}
	fmt.Printf("driftline streamed: reference profile of %d rows x %d features in %.1f s; window of %d rows x %d features and its report in %.1f s (%.2fM values/s); %d of %d features drifted\n",
		rows, feats, profTime.Seconds(), rows, feats, winTime.Seconds(), float64(rows)*float64(feats)/winTime.Seconds()/1e6, drifted, feats)
	fmt.Printf("driftline streamed: %.1f s in all, generation included; chunks of %d rows (%d MB); peak RSS %s (the table would be %d MB a side)\n",
		time.Since(t0).Seconds(), chunk, chunk*feats*8>>20, benchutil.PeakRSS(), rows*feats*8>>20)
}
