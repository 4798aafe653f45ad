// Command monitorbench times one monitoring window (monitor.Compute) over N logged
// predictions of P numeric features: KPIs, input drift against a reference profile,
// prediction drift, the loss estimator's MAE, live MAE on labels for every request, and
// disparate impact over four groups. The log is built in memory first (not timed): this is the
// window's computation, not the reading of the log. bench/monitor.sh runs it.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

func main() {
	n := flag.Int("rows", 1_000_000, "logged predictions in the window")
	p := flag.Int("features", 20, "numeric features")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed windows here")
	flag.BoolVar(&jsonInputs, "json-inputs", false, "log the inputs as an older part holds them (a JSON object) instead of typed columns")
	flag.Parse()
	profilePath = *cpuprofile
	if err := run(*n, *p); err != nil {
		fmt.Fprintln(os.Stderr, "monitorbench:", err)
		os.Exit(1)
	}
}

var profilePath string

// jsonInputs logs the requests' features as parts written before the typed columns did.
var jsonInputs bool

func specYAML(p int) string {
	var b strings.Builder
	b.WriteString("apiVersion: driftline.dev/v1\nkind: ModelSpec\nmodel: bench\ndataset: {name: bench, event_time: date}\nfeatures: [")
	for j := range p {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "f%d", j)
	}
	b.WriteString("]\ntarget: y\ntrainer: {name: gbdt}\nevaluation: {max_mae: 5}\ncontract:\n  columns:\n    - {name: date, type: string, role: event_time}\n    - {name: group, type: string, role: protected_attribute}\n    - {name: y, type: double, role: target}\n")
	for j := range p {
		fmt.Fprintf(&b, "    - {name: f%d, type: double, role: feature}\n", j)
	}
	return b.String()
}

func run(n, p int) error {
	sp, err := spec.Parse([]byte(specYAML(p)))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	row := func(shift float64) ([]float64, float64) {
		x := make([]float64, p)
		s := 0.0
		for j := range x {
			x[j] = rng.NormFloat64() + shift*float64(j%2)
			s += x[j]
		}
		return x, s + rng.NormFloat64()
	}
	m, est, ref, err := reference(sp, p, row)
	if err != nil {
		return err
	}
	recs, labels, answered := window(n, p, m, row)
	fmt.Printf("window: %d predictions x %d features, built in memory (not timed)\n", n, p)
	var best time.Duration
	var rep monitor.Report
	stop, err := benchutil.CPUProfile(profilePath)
	if err != nil {
		return err
	}
	defer stop()
	for range 3 {
		t0 := time.Now()
		rep = monitor.Compute(monitor.Input{Spec: sp, Version: 1, Reference: &ref, Estimator: est, FavorableAbove: 0,
			Records: recs, Labels: labels, Answered: answered})
		if d := time.Since(t0); best == 0 || d < best {
			best = d
		}
	}
	fmt.Printf("monitoring window: %.3f s (best of 3): %.2fM rows/s; drift %v (score %.3f), live MAE %.3f, estimated MAE %.3f, DI %.3f; peak RSS %s\n",
		best.Seconds(), float64(n)/best.Seconds()/1e6, rep.Drifted, rep.InputDrift.Score, rep.Live.MAE, rep.Estimated.MAE,
		rep.Fairness.DisparateImpact, benchutil.PeakRSS())
	if math.IsNaN(rep.Live.MAE) {
		return fmt.Errorf("no live MAE")
	}
	return nil
}

// reference is a model and its loss estimator trained on 20,000 reference rows, and the
// reference profile.
func reference(sp spec.Spec, p int, row func(shift float64) ([]float64, float64)) (*model.Model, *model.Model, drift.Profile, error) {
	// A model and its loss estimator on 20,000 reference rows; the reference profile.
	const nref = 20_000
	xs, ys := make([]float64, 0, nref*p), make([]float64, 0, nref)
	cols := make([][]float64, p)
	for range nref {
		x, y := row(0)
		xs, ys = append(xs, x...), append(ys, y)
		for j, v := range x {
			cols[j] = append(cols[j], v)
		}
	}
	binner, err := model.NewBinner(cols, make([]bool, p), hparams.MaxBins)
	if err != nil {
		return nil, nil, drift.Profile{}, err
	}
	mat := model.NewMatrix(p, nref)
	for i := range nref {
		mat.Append(binner, xs[i*p:i*p+p], ys[i])
	}
	params := hparams.Default()
	params.Trees = 50
	e, _, err := model.TrainGBDT(mat, nil, binner, params)
	if err != nil {
		return nil, nil, drift.Profile{}, err
	}
	m := &model.Model{Family: model.FamilyGBDT, Trainer: "gbdt", Objective: hparams.SquaredError, Features: sp.Features, Target: "y", GBDT: e}
	est, err := evaluate.TrainLossEstimator(m, xs, ys)
	if err != nil {
		return nil, nil, drift.Profile{}, err
	}
	ref, err := drift.NewProfile(sp.Features, cols)
	if err != nil {
		return nil, nil, drift.Profile{}, err
	}
	return m, est, ref, nil
}

// window is n answered requests (half the features shifted), each labelled, logged as serving
// logs them (or with JSON inputs, as older parts hold them, with -json-inputs).
func window(n, p int, m *model.Model, row func(shift float64) ([]float64, float64)) ([]predlog.Record, []predlog.Label, map[string]predlog.Record) {
	groups := []string{"north", "south", "east", "west"}
	recs := make([]predlog.Record, n)
	labels := make([]predlog.Label, n)
	answered := make(map[string]predlog.Record, n)
	var sb strings.Builder
	names := make([]string, p)
	for j := range names {
		names[j] = "f" + strconv.Itoa(j)
	}
	for i := range n {
		x, y := row(0.3)
		id := "r" + strconv.Itoa(i)
		recs[i] = predlog.Record{RequestID: id, TimeUnixMs: int64(i), Model: "bench", Version: 1, Route: string(pipeline.RouteProduction),
			LatencyUs: int64(500 + i%1000), Prediction: m.Predict(x), Attributes: `{"group":"` + groups[i%4] + `"}`}
		labels[i] = predlog.Label{RequestID: id, TimeUnixMs: int64(i) + 60_000, Label: y}
		if !jsonInputs { // as serving logs them: the model's names, one value each
			recs[i].InputNames, recs[i].InputValues = names, append([]float64(nil), x...)
			answered[id] = recs[i]
			continue
		}
		sb.Reset()
		sb.WriteByte('{')
		for j, v := range x {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`"f`)
			sb.WriteString(strconv.Itoa(j))
			sb.WriteString(`":`)
			sb.WriteString(strconv.FormatFloat(v, 'g', 8, 64))
		}
		sb.WriteByte('}')
		recs[i].Inputs = sb.String()
		answered[id] = recs[i]
	}
	return recs, labels, answered
}
