package activities

import (
	"context"
	"encoding/json"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// Drift compares the window with the production model's reference profile.
type Drift struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
}

// DriftReport is stored at reports/<model>/<run>/drift.json.
type DriftReport struct {
	Model            string `json:"model"`
	RunID            string `json:"run_id"`
	ReferenceVersion int    `json:"reference_version"`
	Snapshot         string `json:"snapshot"`
	drift.Report
}

// Detect streams the window's accepted rows into a drift accumulator (memory bounded by one
// row group plus fixed-size per-feature state) and compares it with the production
// version's reference profile, without re-reading the training data. With no production model
// there is no reference: the result says so (ReferenceVersion 0).
func (d *Drift) Detect(ctx context.Context, in StepInput) (DriftResult, error) {
	dep, _, err := d.Registry.Deployment(ctx, in.Model)
	if err != nil {
		return DriftResult{}, classify("drift", err)
	}
	if dep.Production == 0 {
		return DriftResult{Why: "no production model yet: nothing to compare against"}, nil
	}
	prof, err := d.Registry.LoadProfile(ctx, in.Model, dep.Production)
	if err != nil {
		return DriftResult{}, classify("drift", err)
	}
	s, err := loadSnapshot(ctx, d.Store, in.SnapshotKey)
	if err != nil {
		return DriftResult{}, err
	}
	// Compare the features both the reference and this spec know.
	var keep drift.Profile
	for _, f := range in.Spec.Features {
		if fp, ok := prof.Feature(f); ok {
			keep.Features = append(keep.Features, fp)
		}
	}
	w := drift.NewWindow(keep)
	fr, err := newFeatureReader(in.Spec)
	if err != nil {
		return DriftResult{}, err
	}
	idx := make([]int, len(in.Spec.Features))
	for i, f := range in.Spec.Features {
		idx[i] = w.Index(f)
	}
	err = dataset.Scan(ctx, d.Store, s, in.Spec.Contract, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, b.File)
		for r := 0; r < b.Rows; r++ {
			if !b.Accepted[r] {
				continue
			}
			fr.observe(b, r, func(i int, kind string, num float64, cat string) {
				switch {
				case idx[i] < 0:
				case kind == drift.Categorical:
					w.AddCategory(idx[i], cat)
				default:
					w.AddNumeric(idx[i], num, b.RowKey0+uint64(r))
				}
			})
		}
		return nil
	})
	if err != nil {
		return DriftResult{}, classify("drift", err)
	}
	rep := w.Report(in.Spec.Drift.Config())
	key := reportKey(in.Model, in.RunID, "drift.json")
	body, _ := json.MarshalIndent(DriftReport{Model: in.Model, RunID: in.RunID, ReferenceVersion: dep.Production,
		Snapshot: d.Store.URI(in.SnapshotKey), Report: rep}, "", " ")
	if _, err := d.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return DriftResult{}, classify("drift", err)
	}
	res := DriftResult{ReferenceVersion: dep.Production, Drifted: rep.Drifted, Score: rep.Score, Share: rep.Share,
		Why: rep.Why, ReportURI: d.Store.URI(key)}
	for _, f := range rep.Features {
		if f.Drifted {
			res.DriftedFeatures = append(res.DriftedFeatures, f.Name)
		}
		if d.Metrics != nil {
			d.Metrics.DriftPSI.WithLabelValues(in.Model, f.Name).Set(f.PSI)
			d.Metrics.DriftKS.WithLabelValues(in.Model, f.Name).Set(f.KS)
		}
	}
	if d.Metrics != nil {
		d.Metrics.DriftScore.WithLabelValues(in.Model).Set(rep.Score)
	}
	return res, nil
}
