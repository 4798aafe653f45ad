package benchutil

import (
	"context"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/registry"
)

// DeployDemoModel registers, as model name, the model the demo serves (gbdt of depth 6, promo
// and weekday categorical, trained on the demo's days 30-57) with the given number of trees
// (the demo's has 100), and makes it production.
func DeployDemoModel(ctx context.Context, r *registry.Registry, name string, trees int) registry.Version {
	features := []string{"price", "promo", "weekday", "temperature", "item_popularity"}
	cfg := dataset.DefaultRetail()
	var xs, ys []float64
	for day := 30; day < 58; day++ {
		for _, row := range cfg.RetailDay(day) {
			if row.Temperature == row.Temperature {
				xs = append(xs, row.Price, float64(row.Promo), float64(row.Weekday), row.Temperature, row.ItemPopularity)
				ys = append(ys, row.UnitsSold)
			}
		}
	}
	p := len(features)
	sample := make([][]float64, p)
	for i := range ys {
		for j := range p {
			sample[j] = append(sample[j], xs[i*p+j])
		}
	}
	binner, err := model.NewBinner(sample, []bool{false, true, true, false, false}, hparams.MaxBins)
	if err != nil {
		panic(err)
	}
	mat := model.NewMatrix(p, len(ys))
	for i := range ys {
		mat.Append(binner, xs[i*p:i*p+p], ys[i])
	}
	params := hparams.Default()
	params.Trees, params.MaxDepth, params.LearningRate = trees, 6, 0.1
	e, _, err := model.TrainGBDT(mat, nil, binner, params)
	if err != nil {
		panic(err)
	}
	art, err := (&model.Model{Family: "gbdt", Trainer: "gbdt", Objective: hparams.SquaredError, Features: features, Target: "units_sold", GBDT: e}).Marshal()
	if err != nil {
		panic(err)
	}
	v, err := r.Register(ctx, registry.Version{Model: name, Lineage: registry.Lineage{RunID: "bench"}}, art, drift.Profile{}, nil)
	if err != nil {
		panic(err)
	}
	if _, err := r.UpdateDeployment(ctx, name, registry.Change{Action: registry.TransPromote, Key: "bench"}, func(d *registry.Deployment) (bool, error) {
		return d.Promote(v.Version)
	}); err != nil {
		panic(err)
	}
	return v
}
