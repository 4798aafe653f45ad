package devcli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

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

// demoFeatureStore is the demo's fifth phase (docs/features.md): dave applies the feature
// definitions through the API, a run of the feature-service spec trains on the window's rows
// with the store-items' sales history joined as of each row's day, bob approves, the view is
// materialized into serving's embedded online store as of the data's end, and a request that
// names only its store and item gets the history from the store.
func demoFeatureStore(ctx context.Context, c client.Client, b objstore.Bucket, starts, gov cli.APIClient, devSecret []byte, url, specPath string,
	row dataset.RetailRow) (demoResult, string, error) {
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
	if err := resetDemoModel(ctx, c, b, sp.Model); err != nil {
		return demoResult{}, "", err
	}
	defs, err := os.ReadFile("examples/features.yaml")
	if err != nil {
		return demoResult{}, "", err
	}
	if err := demoApplySpec(ctx, gov, "grace (governance)", raw, "demo: the feature-store model's spec"); err != nil {
		return demoResult{}, "", err
	}
	applied, err := apiOf(starts).ApplyFeatures(ctx, fsv.Repo, api.FeaturesRequest{Definitions: string(defs), Model: sp.Model,
		Reason: "demo: store-item demand history"})
	if err != nil {
		return demoResult{}, "", err
	}
	if applied.Changed {
		fmt.Printf("  dave applies examples/features.yaml through the API (driftline features apply): %s version %d\n", fsv.Repo, applied.Version)
	} else {
		fmt.Printf("  examples/features.yaml is already %s version %d (driftline features plan: no changes)\n", fsv.Repo, applied.Version)
	}

	fmt.Printf("  run of %s (%s) on %s..%s: its training set joins %s/%s to each row as of its day\n", sp.Model, specPath, demoFrom2, demoTo2, fsv.Repo, fsv.Name)
	approve := func(st pipeline.Status) {
		tok, err := api.MintDev(devSecret, "bob", nil, 10*time.Minute)
		for attempt := 0; err == nil && attempt < 10; attempt++ {
			var out string
			if out, err = cli.PostDecision(ctx, *starts.URL, tok, sp.Model, true, st.CandidateVersion, "demo: evidence reviewed"); err == nil {
				fmt.Printf("  bob (approver of group:retail) approves v%d through the API: %s\n", st.CandidateVersion, out)
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		fmt.Printf("  approval failed: %v; ending the run\n", err)
		_ = c.TerminateWorkflow(ctx, pipeline.WorkflowID(sp.Model), "", "demo: approval failed")
	}
	res, link, err := demoRun(ctx, c, starts, api.RunRequest{Model: sp.Model, From: demoFrom2, To: demoTo2}, sp.Model, approve)
	if err != nil {
		return res, link, err
	}
	if data, _, err := objstore.ReadAll(ctx, b, keys.Report(sp.Model, res.RunID, "training_set.json")); err == nil {
		var rep activities.TrainingSetReport
		if json.Unmarshal(data, &rep) == nil {
			fmt.Printf("  training set: %d rows, features %s (definitions v%d, %s)\n", rep.Rows, strings.Join(rep.Columns, ", "), rep.DefinitionsVersion, rep.ReportURI)
			var miss []string
			for i, col := range rep.Columns {
				miss = append(miss, fmt.Sprintf("%s %d", col, rep.Missing[i]))
			}
			fmt.Printf("    rows with no value known by their day (history starts 2026-09-01): %s\n", strings.Join(miss, ", "))
		}
	}
	if res.Outcome != pipeline.OutcomePromoted {
		return res, link, fmt.Errorf("the feature-store model was not promoted: %s", res.Reason)
	}

	// Materialize the view as of the data's end into serving's embedded store.
	end := "2026-10-31"
	m, err := apiOf(starts).Materialize(ctx, fsv.Repo, api.MaterializeRequest{View: "demand_history", Model: sp.Model,
		From: demoTo2, To: end, Chunk: "24h", TaskQueue: cli.Env("DRIFTLINE_FEATURES_QUEUE", "driftline-features")})
	if err != nil {
		return res, link, err
	}
	var mres pipeline.MaterializeInput
	if err := c.GetWorkflow(ctx, m.WorkflowID, m.RunID).Get(ctx, &mres); err != nil {
		return res, link, fmt.Errorf("materialize: %w", err)
	}
	fmt.Printf("  dave materializes demand_history as of %s into serving's embedded online store (driftline features materialize): workflow %s, watermark %s\n",
		end, m.WorkflowID, mres.Watermark.UTC().Format(time.RFC3339))
	if err := waitServing(ctx, url, sp.Model, res.Version); err != nil {
		return res, link, err
	}

	fmt.Printf("\n  a prediction of %s whose request names its store and item and carries no history: serving reads it from the online store\n", sp.Model)
	req := traffic.FromRetail(row)
	req.Attributes["store_id"] = strconv.Itoa(int(row.StoreID))
	req.Attributes["item_id"] = strconv.Itoa(int(row.ItemID))
	req.Explain = true
	delete(req.Features, "temperature") // from the weather source, as before
	if err := cli.PredictAndPrint(ctx, url, sp.Model, req); err != nil {
		return res, link, err
	}
	return res, link, nil
}
