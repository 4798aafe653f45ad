package devcli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/traffic"
)

// featureStoreModel is the demo's feature-store phase (docs/features.md): dave applies the feature
// definitions through the API, a run of the feature-service spec trains on the window's rows
// with the store-items' sales history joined as of each row's day, bob approves, the view is
// materialized into serving's embedded online store as of the data's end, and a request that
// names only its store and item gets the history from the store.
func (d *demo) featureStoreModel(specPath string, row dataset.RetailRow) (demoResult, string, error) {
	ctx := d.ctx
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return demoResult{}, "", err
	}
	sp, err := spec.Parse(raw)
	if err != nil {
		return demoResult{}, "", fmt.Errorf("%s: %w", specPath, err)
	}
	if sp.FeatureService == nil {
		return demoResult{}, "", fmt.Errorf("%s names no feature_service", specPath)
	}
	fsv := sp.FeatureService
	if err := d.applyFeatures(sp, raw); err != nil {
		return demoResult{}, "", err
	}
	fmt.Printf("  run of %s (%s) on %s..%s: its training set joins %s/%s to each row as of its day\n", sp.Model, specPath, demoFrom2, demoTo2, fsv.Repo, fsv.Name)
	res, link, err := demoRun(ctx, d.c, d.starts, api.RunRequest{Model: sp.Model, From: demoFrom2, To: demoTo2}, sp.Model, d.approver(sp.Model, "bob", "bob (approver of group:retail)"))
	if err != nil {
		return res, link, err
	}
	d.showTrainingSet(sp.Model, res.RunID)
	if res.Outcome != pipeline.OutcomePromoted {
		return res, link, fmt.Errorf("the feature-store model was not promoted: %s", res.Reason)
	}
	if err := d.materialize(sp, res.Version); err != nil {
		return res, link, err
	}
	fmt.Printf("\n  a prediction of %s whose request names its store and item and carries no history: serving reads it from the online store\n", sp.Model)
	req := traffic.FromRetail(row)
	req.Attributes["store_id"] = strconv.Itoa(int(row.StoreID))
	req.Attributes["item_id"] = strconv.Itoa(int(row.ItemID))
	req.Explain = true
	delete(req.Features, "temperature") // from the weather source, as before
	return res, link, cli.PredictAndPrint(ctx, d.o.url, sp.Model, req)
}

// applyFeatures resets the model, registers its spec (grace) and applies the feature
// definitions (dave) through the API.
func (d *demo) applyFeatures(sp spec.Spec, raw []byte) error {
	ctx, fsv := d.ctx, sp.FeatureService
	if err := resetDemoModel(ctx, d.c, d.b, sp.Model); err != nil {
		return err
	}
	defs, err := os.ReadFile("examples/features.yaml")
	if err != nil {
		return err
	}
	if err := demoApplySpec(ctx, d.gov, "grace (governance)", raw, "demo: the feature-store model's spec"); err != nil {
		return err
	}
	applied, err := apiOf(d.starts).ApplyFeatures(ctx, fsv.Repo, api.FeaturesRequest{Definitions: string(defs), Model: sp.Model,
		Reason: "demo: store-item demand history"})
	if err != nil {
		return err
	}
	if applied.Changed {
		fmt.Printf("  dave applies examples/features.yaml through the API (driftline features apply): %s version %d\n", fsv.Repo, applied.Version)
	} else {
		fmt.Printf("  examples/features.yaml is already %s version %d (driftline features plan: no changes)\n", fsv.Repo, applied.Version)
	}
	return nil
}

// showTrainingSet prints the run's training set report: its features and their missing values.
func (d *demo) showTrainingSet(model, runID string) {
	data, _, err := objstore.ReadAll(d.ctx, d.b, keys.Report(model, runID, "training_set.json"))
	if err != nil {
		return
	}
	var rep activities.TrainingSetReport
	if json.Unmarshal(data, &rep) != nil {
		return
	}
	fmt.Printf("  training set: %d rows, features %s (definitions v%d, %s)\n", rep.Rows, strings.Join(rep.Columns, ", "), rep.DefinitionsVersion, rep.ReportURI)
	var miss []string
	for i, col := range rep.Columns {
		miss = append(miss, fmt.Sprintf("%s %d", col, rep.Missing[i]))
	}
	fmt.Printf("    rows with no value known by their day (history starts 2026-09-01): %s\n", strings.Join(miss, ", "))
}

// materialize materializes the view as of the data's end into serving's embedded store
// (dave, through the API) and waits until serving answers with version.
func (d *demo) materialize(sp spec.Spec, version int) error {
	ctx := d.ctx
	end := "2026-10-31"
	m, err := apiOf(d.starts).Materialize(ctx, sp.FeatureService.Repo, api.MaterializeRequest{View: "demand_history", Model: sp.Model,
		From: demoTo2, To: end, Chunk: "24h", TaskQueue: cli.Env("DRIFTLINE_FEATURES_QUEUE", "driftline-features")})
	if err != nil {
		return err
	}
	var mres pipeline.MaterializeInput
	if err := d.c.GetWorkflow(ctx, m.WorkflowID, m.RunID).Get(ctx, &mres); err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	fmt.Printf("  dave materializes demand_history as of %s into serving's embedded online store (driftline features materialize): workflow %s, watermark %s\n",
		end, m.WorkflowID, mres.Watermark.UTC().Format(time.RFC3339))
	return waitServing(ctx, d.o.url, sp.Model, version)
}
