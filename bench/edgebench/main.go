// Command edgebench measures the edge bundle and runtime against the float model and against
// leaves (github.com/dmitryikh/leaves, pure Go tree inference), on the same XGBoost model:
// trained by Debian's XGBoost on the demo's rows, read through Driftline's XGBoost JSON
// loader, then quantised and sealed for the edge, and written as a LightGBM JSON dump for
// leaves (whose XGBoost reader does not read XGBoost 1.x models). bench/edge.sh runs it.
package main

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/dmitryikh/leaves"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/model"
)

var features = []string{"price", "promo", "weekday", "temperature", "item_popularity"}

func main() {
	dir := flag.String("dir", "", "working directory")
	mode := flag.String("mode", "", "data: write the demo's rows; measure: measure the trained model")
	flag.Parse()
	switch *mode {
	case "data":
		writeData(*dir)
	case "measure":
		measure(*dir)
	default:
		fail(fmt.Errorf("-mode data or measure"))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "edgebench:", err)
	os.Exit(1)
}

// demoRows are the demo's rows of days [from, to): features and units sold.
func demoRows(from, to int) ([]float64, []float64) {
	cfg := dataset.DefaultRetail()
	var x, y []float64
	for day := from; day < to; day++ {
		for _, r := range cfg.RetailDay(day) {
			if r.Temperature != r.Temperature {
				continue
			}
			x = append(x, r.Price, float64(r.Promo), float64(r.Weekday), r.Temperature, r.ItemPopularity)
			y = append(y, r.UnitsSold)
		}
	}
	return x, y
}

func writeData(dir string) {
	x, y := demoRows(0, 28)
	var b strings.Builder
	for i := range y {
		for _, v := range x[i*5 : i*5+5] {
			fmt.Fprintf(&b, "%v,", v)
		}
		fmt.Fprintf(&b, "%v\n", y[i])
	}
	if err := os.WriteFile(filepath.Join(dir, "train.csv"), []byte(b.String()), 0o644); err != nil {
		fail(err)
	}
}

func measure(dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		fail(err)
	}
	fm, err := model.LoadXGBoostJSON(raw, features, "units_sold")
	if err != nil {
		fail(err)
	}
	floatArt, err := fm.Marshal()
	if err != nil {
		fail(err)
	}
	q, err := fm.Quantise()
	if err != nil {
		fail(err)
	}
	body, err := edge.Encode(q.Int8.EdgeBody(q.Features, nil))
	if err != nil {
		fail(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	bundle, err := edge.Seal(edge.Manifest{Model: "demand", Version: 1, Counter: 1, Features: features, Kind: "trees"}, body, key)
	if err != nil {
		fail(err)
	}
	lgJSON := lightGBMJSON(fm.GBDT, len(features))
	fmt.Printf("sizes: XGBoost JSON %d B, Driftline float artifact %d B, edge bundle %d B: %.3f of the float artifact (goal <= 0.25)\n",
		len(raw), len(floatArt), len(bundle), float64(len(bundle))/float64(len(floatArt)))

	x, y := demoRows(40, 54) // two weeks after the training days: the holdout
	n := len(y)
	em, loadEdge := loadTimes(func() any {
		m, err := edge.Load(bundle, edge.Options{Keys: []ed25519.PublicKey{pub}})
		check(err)
		return m
	})
	lv, loadLeaves := loadTimes(func() any { m, err := leaves.LGEnsembleFromJSON(bytes.NewReader(lgJSON), false); check(err); return m })
	fmt.Printf("load (median of 20): edge bundle %v, leaves (LightGBM JSON) %v\n", loadEdge, loadLeaves)
	edgeModel, leavesModel := em.(*edge.Model), lv.(*leaves.Ensemble)
	agree(fm, edgeModel, leavesModel, q, x, y)
	atRest(bundle, pub)

	runtime.GOMAXPROCS(1)
	perRow := func(name string, f func(row []float64) float64) time.Duration {
		var best time.Duration
		for range 5 {
			start := time.Now()
			var sink float64
			for rep := 0; rep < 4; rep++ {
				for i := range n {
					sink += f(x[i*5 : i*5+5])
				}
			}
			d := time.Since(start) / time.Duration(4*n)
			if best == 0 || d < best {
				best = d
			}
			_ = sink
		}
		fmt.Printf("one core, per row (best of 5 passes over %d rows x 4): %-28s %v\n", n, name, best)
		return best
	}
	edgeT := perRow("edge runtime (int8 bundle)", func(r []float64) float64 { v, _ := edgeModel.Predict(r); return v })
	leavesT := perRow("leaves PredictSingle", func(r []float64) float64 { return leavesModel.PredictSingle(r, 0) })
	perRow("Driftline float model", fm.Predict)
	fmt.Printf("ratio: edge runtime throughput %.2fx leaves' (goal >= 1.5)\n", float64(leavesT)/float64(edgeT))
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func loadTimes(load func() any) (any, time.Duration) {
	var times []time.Duration
	var out any
	for range 20 {
		start := time.Now()
		out = load()
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return out, times[len(times)/2]
}

// agree prints how far leaves is from the float model (the same model), and the int8
// variant's accuracy cost on the holdout.
func agree(fm *model.Model, em *edge.Model, lv *leaves.Ensemble, q *model.Model, x, y []float64) {
	var maxDiff, fmae, qmae float64
	for i := range y {
		row := x[i*5 : i*5+5]
		f := fm.Predict(row)
		e, _ := em.Predict(row)
		if math.Float64bits(e) != math.Float64bits(q.Predict(row)) {
			fail(fmt.Errorf("row %d: the edge runtime and the server's int8 variant differ", i))
		}
		maxDiff = math.Max(maxDiff, math.Abs(lv.PredictSingle(row, 0)-f))
		fmae += math.Abs(f - y[i])
		qmae += math.Abs(e - y[i])
	}
	n := float64(len(y))
	fmt.Printf("same model: leaves within %.2g of the float model over %d holdout rows\n", maxDiff, len(y))
	fmt.Printf("accuracy: holdout MAE float %.5f, int8 bundle %.5f (%+.2f%%)\n", fmae/n, qmae/n, 100*(qmae-fmae)/fmae)
}

// atRest prints the heap a loaded bundle holds.
func atRest(bundle []byte, pub ed25519.PublicKey) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := edge.Load(bundle, edge.Options{Keys: []ed25519.PublicKey{pub}})
	check(err)
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Printf("memory at rest: a loaded bundle holds %d KB of heap\n", (after.HeapAlloc-before.HeapAlloc)/1024)
	runtime.KeepAlive(m)
}
