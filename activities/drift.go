package activities

import (
	"context"
	"encoding/json"

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

// Detect writes reports/<model>/<run>/drift.json. With no production model yet there is no
// reference: the result says so (ReferenceVersion 0) and the loop trains the first version.
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
	var names []string
	for _, f := range in.Spec.Features {
		if _, ok := prof.Feature(f); ok {
			names = append(names, f)
		}
	}
	tbl, err := dataset.Load(ctx, d.Store, s, names, nil)
	if err != nil {
		return DriftResult{}, classify("drift", err)
	}
	th := drift.Thresholds{PSI: in.Spec.Drift.PSIThreshold, KS: in.Spec.Drift.KSThreshold,
		KSPValue: in.Spec.Drift.KSPValue, DriftShare: in.Spec.Drift.DriftShare}
	rep, err := drift.Compare(prof, names, tbl.Cols, th)
	if err != nil {
		return DriftResult{}, classify("drift", err)
	}
	key := reportKey(in.Model, in.RunID, "drift.json")
	body, _ := json.MarshalIndent(struct {
		ReferenceVersion int `json:"reference_version"`
		drift.Report
	}{dep.Production, rep}, "", " ")
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
